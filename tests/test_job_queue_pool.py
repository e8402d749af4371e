"""The pool's job queue on a real 2-node local pool: 50 jobs submitted at once all end DONE, start
in the order they were submitted, none is lost or run twice, and the GCS stays small."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

import shoal
from pool_helpers import pool_in_new_home, pool_processes
from shoal.jobs import submit_file

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "QUEUE2"
JOBS = 50


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("queue-home"), POOL, 2)


def gcs_rss_mb(pool_id: str) -> float:
    total = 0.0
    for pid in pool_processes(pool_id):
        try:
            proc = psutil.Process(pid)
            if "gcs_server" in proc.name():
                total += proc.memory_info().rss / 2**20
        except psutil.Error:
            continue
    return total


def test_fifty_jobs_at_once_all_done_in_submission_order(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    ran = tmp_path / "ran.log"
    script = tmp_path / "one.py"
    script.write_text(
        "import os\n"
        f"with open({str(ran)!r}, 'a') as f:\n"
        "    f.write(os.environ['SHOAL_JOB_NAME'] + '\\n')\n"
        "__return__ = os.environ['SHOAL_JOB_NAME']\n"
    )
    pool_id = json.loads((home / "pools" / POOL / "state.json").read_text())["pool_id"]
    jobs = [submit_file(str(script), POOL, stage_name="queue") for _ in range(JOBS)]
    peak = 0.0
    for job in jobs:
        assert job.result(timeout=600) == job.name
        peak = max(peak, gcs_rss_mb(pool_id))
    assert all(job.status == "DONE" for job in jobs)
    lines = ran.read_text().split()
    assert sorted(lines) == sorted(job.name for job in jobs), "every job ran exactly once"
    from shoal.jobs.queue import service_name
    from shoal.pools.connect import connect

    ray = connect(shoal.describe_compute_pool(POOL)["address"])
    service = ray.get_actor(service_name(POOL), namespace="shoal")
    started = ray.get(service.started_order.remote())
    ours = [name for name in started if name in {job.name for job in jobs}]
    assert ours == [job.name for job in jobs], "FIFO: started in the order they were submitted"
    assert 0 < peak < 1024, f"the GCS grew to {peak:.0f} MB"


def leave_traces() -> str:
    import os
    import sys
    import types

    os.environ["LEFT_BY_EARLIER_JOB"] = "1"
    sys.modules["left_by_earlier_job"] = types.ModuleType("left_by_earlier_job")
    os.makedirs("shoal-left-by-earlier-job", exist_ok=True)  # in the job's own folder, removed with it
    os.chdir("shoal-left-by-earlier-job")
    return str(os.environ.get("SHOAL_JOB_NODE_IDS", "")).split(",")[0]


def look_for_traces() -> dict[str, object]:
    import os
    import sys

    return {
        "env": os.environ.get("LEFT_BY_EARLIER_JOB"),
        "job_env": os.environ.get("ONLY_FOR_THE_FIRST_JOB"),
        "module": "left_by_earlier_job" in sys.modules,
        "cwd": os.getcwd(),
        "node": str(os.environ.get("SHOAL_JOB_NODE_IDS", "")).split(",")[0],
    }


def test_nothing_of_one_job_is_seen_by_the_next_on_the_same_node(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoal.jobs import remote

    monkeypatch.setenv("SHOAL_HOME", str(home))
    first = remote(POOL, stage_name="queue", env_vars={"ONLY_FOR_THE_FIRST_JOB": "x"})(leave_traces)
    second = remote(POOL, stage_name="queue")(look_for_traces)
    nodes_left = {first().result(timeout=300) for _ in range(3)}  # 3 jobs, 2 nodes: one node twice
    seen = [second().result(timeout=300) for _ in range(3)]
    assert any(s["node"] in nodes_left for s in seen), "a later job ran where an earlier one had"
    for traces in seen:
        assert traces["env"] is None
        assert traces["job_env"] is None
        assert traces["module"] is False
        assert "shoal-left-by-earlier-job" not in str(traces["cwd"])

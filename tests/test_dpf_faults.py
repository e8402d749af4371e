"""The DPF engine against real faults on a real 3-node local pool: a node's raylet killed mid-run,
a worker that calls ``os._exit``, 2,000 partitions, and logs that stay with their partition
through batches and pipelining. The node-loss test runs last: it leaves the pool one node short."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest

import shoal
from pool_helpers import payload_process, pool_in_new_home, run_python
from shoal.dpf import DPF, DPFRun, ExecutionOptions, PartitionStatus, RunStatus

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "DPFFAULT"
STAGE = "faults"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("dpf-fault-home"), POOL, 3)


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", POOL)


def run_folder(run_id: str) -> Path:
    root = shoal.get_stage(STAGE).backend.local_path(run_id)
    assert root is not None
    return Path(root)


def leftovers(run_id: str) -> list[str]:
    """Hidden attempt files and interrupted writes anywhere under the run."""
    return [
        str(path.relative_to(run_folder(run_id)))
        for path in run_folder(run_id).rglob("*")
        if path.name.startswith(".shoal-tmp-")
    ]


def talkative(data: Any, context: Any) -> None:
    pid = context.partition_id
    rows = len(data.to_pandas())
    print(f"start {pid}")
    logging.getLogger("user").warning("logged by %s", pid)
    print(f"end {pid} rows={rows}")
    context.upload_to_stage({"pid": pid, "rows": rows}, "out.pkl")


def test_two_thousand_partitions_each_with_its_own_artifact_and_only_its_own_log_lines() -> None:
    frame = pd.DataFrame({"key": np.repeat(np.arange(2000), 3), "value": np.arange(6000)})
    run = DPF(talkative, STAGE).run(partition_by="key", dataframe=frame, run_id="many")
    assert run.wait(timeout=600, show_progress=False) == RunStatus.SUCCESS
    details = run.partition_details
    assert len(details) == 2000
    assert all(d.status == PartitionStatus.DONE for d in details.values())
    folder = run_folder("many")
    for pid in ("0", "1", "999", "1998", "1999"):
        assert details[pid].stage_artifacts_manager.get("out.pkl") == {"pid": pid, "rows": 3}
    for pid in details:
        files = sorted(p.name for p in (folder / pid).iterdir())
        assert files == ["out.pkl", "train.log"], (pid, files)
        log = (folder / pid / "train.log").read_text()
        lines = [line for line in log.splitlines() if line.strip()]
        assert lines[0] == f"===== partition {pid} attempt 1: DONE ====="
        assert lines[1:] == [
            f"start {pid}",
            lines[2],
            f"end {pid} rows=3",
        ], (pid, lines)
        assert lines[2].endswith(f"WARNING user: logged by {pid}"), (pid, lines)
    assert len({d.node_id for d in details.values()}) == 3
    assert leftovers("many") == []
    assert not (folder / "_shoal" / "attempts").exists()


def exit_on_three(data: Any, context: Any) -> None:
    if context.partition_id == "3":
        os._exit(17)
    context.upload_to_stage(context.partition_id, "out.pkl")


def test_a_worker_that_exits_on_a_live_node_is_internal_error_and_not_retried() -> None:
    options = ExecutionOptions(max_retries=3, retry_backoff_s=0.1)
    run = DPF(exit_on_three, STAGE).run(
        partition_by="key",
        dataframe=pd.DataFrame({"key": range(40)}),
        run_id="exit",
        execution_options=options,
    )
    assert run.wait(timeout=300, show_progress=False) == RunStatus.PARTIAL_FAILURE
    details = run.partition_details
    culprit = details["3"]
    assert culprit.status == PartitionStatus.INTERNAL_ERROR
    assert culprit.attempts == 1, "not retried"
    assert "the worker died while its node stayed up" in (culprit.error or "")
    others = {pid: d for pid, d in details.items() if pid != "3"}
    assert all(d.status == PartitionStatus.DONE for d in others.values()), {
        pid: (d.status, d.error) for pid, d in others.items() if d.status != PartitionStatus.DONE
    }
    assert all(d.stage_artifacts_manager.get("out.pkl") == pid for pid, d in others.items())
    assert not (run_folder("exit") / "3").exists(), "a cut-off attempt leaves nothing at a final path"
    assert leftovers("exit") == []


def process_where(matches: Callable[[dict[str, str], str, str], bool], what: str) -> psutil.Process:
    """The first live process whose (environment, name, command line) ``matches``."""
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            env = proc.environ()
        except psutil.Error:
            continue
        if matches(env, proc.info["name"] or "", " ".join(proc.info["cmdline"] or [])):
            return proc
    raise AssertionError(f"no process {what}")


def test_a_killed_scheduler_is_internal_error_that_says_resume_and_resume_finishes_the_run(
    home: Path,
) -> None:
    run = DPF(slow_out, STAGE).run(
        partition_by="key", dataframe=pd.DataFrame({"key": range(30)}), run_id="killed"
    )
    deadline = time.monotonic() + 180
    while run.counts()["DONE"] < 3:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.2)
    payload_process(run.job_id).kill()  # SIGKILL: no flush, no goodbye
    assert run.wait(timeout=120, show_progress=False) == RunStatus.INTERNAL_ERROR
    assert "resume() continues it" in run.message
    assert "the payload process was killed by signal 9 (SIGKILL)" in run.message, "the job's cause"
    assert f"DPFRun.restore_from('killed', '{shoal.get_stage(STAGE).name}')" in run.message
    done_before = {d.partition_id: d.ended_at for d in run.partition_details.values() if d.status == "DONE"}
    assert done_before
    out = run_python(
        "from shoal.dpf import DPFRun\n"
        f"run = DPFRun.restore_from('killed', {STAGE!r}).resume()\n"
        "print(run.wait(timeout=240, show_progress=False))\n",
        home,
    )
    assert out.strip().splitlines()[-1] == "SUCCESS"
    after = DPFRun.restore_from("killed", STAGE).partition_details
    assert all(d.status == PartitionStatus.DONE for d in after.values())
    for pid, ended in done_before.items():
        assert after[pid].ended_at == ended, f"partition {pid} was DONE and must not run again"
    assert leftovers("killed") == []


def slow_out(data: Any, context: Any) -> None:
    time.sleep(0.4)
    context.upload_to_stage(
        {"pid": context.partition_id, "node": os.environ.get("SHOAL_POOL_NODE")}, "out.pkl"
    )
    print(f"partition {context.partition_id} done")


def raylet_of(node_index: str) -> psutil.Process:
    return process_where(
        lambda env, name, cmd: name == "raylet" and env.get("SHOAL_POOL_NODE") == node_index,
        f"raylet of pool node {node_index}",
    )


def worker_pool_node(run: Any) -> str:
    """The pool index of a node of the run's job that is neither the Ray head nor the job's head
    (instance 0, where the scheduler runs)."""
    from shoal.jobs import get_job
    from shoal.pools.connect import connect

    job = get_job(run.job_id)
    others = job.details()["node_ids"][1:]  # not instance 0, where the scheduler runs
    ray = connect(shoal.describe_compute_pool(POOL)["address"])
    for node in ray.nodes():
        index = str(node.get("NodeName", "")).rsplit("-", 1)[-1]
        if node.get("Alive") and node["NodeID"] in others and index not in ("", "0"):
            return index
    raise AssertionError("no worker node to kill")


@pytest.fixture
def pool_made_whole_after(home: Path) -> Iterator[None]:
    """For a test that kills a node: the pool is stopped and started again after it, so the
    tests that run later (in any order) have every node."""
    yield
    shoal.stop_compute_pool(POOL)
    shoal.start_compute_pool(POOL)
    assert shoal.describe_compute_pool(POOL)["active_nodes"] == 3


def test_a_node_killed_mid_run_loses_no_partition_and_each_artifact_exists_once(
    pool_made_whole_after: None,
) -> None:
    run = DPF(slow_out, STAGE).run(
        partition_by="key", dataframe=pd.DataFrame({"key": range(60)}), run_id="nodeloss"
    )
    deadline = time.monotonic() + 180
    while True:
        details = run.partition_details
        done = [d for d in details.values() if d.status == PartitionStatus.DONE]
        if len(done) >= 6:
            break
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.2)
    victim_index = worker_pool_node(run)
    victim = raylet_of(victim_index)
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.time()
    assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS, run.message
    details = run.partition_details
    assert all(d.status == PartitionStatus.DONE for d in details.values())
    rerun = [d for d in details.values() if d.attempts > 1]
    assert rerun, "the partitions the lost node held ran again"
    assert all((d.started_at or 0) > killed_at for d in rerun)
    assert all(d.error is None for d in details.values())
    folder = run_folder("nodeloss")
    for pid, detail in details.items():
        assert sorted(p.name for p in (folder / pid).iterdir()) == ["out.pkl", "train.log"]
        assert detail.stage_artifacts_manager.get("out.pkl")["pid"] == pid
        log = detail.logs
        assert log.count("===== partition") == 1, "only the attempt that finished wrote the log"
        assert f"attempt {detail.attempts}: DONE" in log
        assert log.count(f"partition {pid} done") == 1
    assert leftovers("nodeloss") == []
    assert all(d.stage_artifacts_manager.get("out.pkl")["node"] != victim_index for d in rerun), "elsewhere"

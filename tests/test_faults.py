"""Faults that must keep working, on a real 2-node local pool, each by a real process dying.

A payload that ends its own process (``os._exit``, SIGKILL of itself), a DPF driver killed
while its run goes on and resumed from a new process, and ``shoal pool stop`` under running and
queued jobs (last: it stops the pool and starts it again). Cancel freeing the nodes for the next
job is in tests/test_jobs.py (test_cancel_a_running_job_and_its_nodes_come_back).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import shoal
from pool_helpers import payload_process, pool_in_new_home, run_python
from shoal.dpf import DPFRun, PartitionStatus, RunStatus
from shoal.jobs import JobStatus, get_job, submit_file

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "FAULTS2"
STAGE = "faults"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("faults-home"), POOL, 2)


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", POOL)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


@pytest.mark.parametrize(
    ("ending", "expected"),
    [
        ("os._exit(7)", "exited with code 7"),
        ("os.kill(os.getpid(), signal.SIGKILL)", "SIGKILL"),
    ],
    ids=["os-exit", "sigkill-of-itself"],
)
def test_a_payload_that_ends_its_own_process_is_failed_with_its_logs(
    tmp_path: Path, ending: str, expected: str
) -> None:
    path = script(
        tmp_path,
        "crash.py",
        "import os, signal, sys\n"
        "print('before the crash', flush=True)\n"
        "print('on stderr too', file=sys.stderr, flush=True)\n"
        f"{ending}\n",
    )
    job = submit_file(path, POOL, stage_name=STAGE)
    assert job.wait(timeout=180) == JobStatus.FAILED
    message = job.details()["message"]
    assert expected in message, message
    logs = job.get_logs()
    assert "before the crash" in logs
    assert "on stderr too" in logs
    again = get_job(job.id)  # the record, as another process reads it
    assert again.status == JobStatus.FAILED
    assert "before the crash" in again.get_logs()


def driver_script(home: Path) -> str:
    return (
        "import time, pandas as pd\n"
        "from shoal.dpf import DPF\n"
        "from test_faults import slow_out\n"
        f"run = DPF(slow_out, {STAGE!r}).run(partition_by='key', "
        "dataframe=pd.DataFrame({'key': range(12)}), run_id='orphan')\n"
        "print(run.job_id, flush=True)\n"
        "run.wait(show_progress=False)\n"
    )


def slow_out(data: Any, context: Any) -> None:
    time.sleep(0.5)
    context.upload_to_stage({"pid": context.partition_id, "rows": len(data.to_pandas())}, "out.pkl")


def test_a_killed_driver_and_scheduler_are_resumed_from_a_new_process(home: Path) -> None:
    env = {**os.environ, "SHOAL_HOME": str(home), "PYTHONPATH": str(Path(__file__).parent)}
    driver = subprocess.Popen(
        [sys.executable, "-c", driver_script(home)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert driver.stdout is not None
    job_id = driver.stdout.readline().strip()
    assert job_id, "the driver did not start the run"
    run = DPFRun.restore_from("orphan", STAGE)
    deadline = time.monotonic() + 120
    while run.counts()["DONE"] < 2:
        assert time.monotonic() < deadline, "the run did not get going"
        time.sleep(0.2)
    os.kill(driver.pid, signal.SIGKILL)  # the user's process: the run goes on without it
    driver.wait(timeout=30)
    payload_process(job_id).kill()  # and the run's scheduler: now only resume() can finish it
    assert run.wait(timeout=120, show_progress=False) == RunStatus.INTERNAL_ERROR
    out = run_python(
        "from shoal.dpf import DPFRun\n"
        f"run = DPFRun.restore_from('orphan', {STAGE!r}).resume()\n"
        "print(run.wait(timeout=240, show_progress=False))\n",
        home,
        extra_env={"PYTHONPATH": str(Path(__file__).parent)},
    )
    assert out.strip().splitlines()[-1] == "SUCCESS"
    details = DPFRun.restore_from("orphan", STAGE).partition_details
    assert sorted(details, key=int) == [str(k) for k in range(12)]
    for pid, detail in details.items():
        assert detail.status == PartitionStatus.DONE
        assert detail.stage_artifacts_manager.get("out.pkl") == {"pid": pid, "rows": 1}
    root = Path(str(shoal.get_stage(STAGE).backend.local_path("orphan")))
    assert [p for p in root.rglob(".shoal-tmp-*")] == [], "no interrupted write is left behind"


def test_zz_pool_stop_ends_running_and_queued_jobs_and_their_records_survive_a_restart(
    tmp_path: Path,
) -> None:
    from shoal.cli import cli

    sleeper = script(tmp_path, "sleeper.py", "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n")
    jobs = [submit_file(sleeper, POOL, stage_name=STAGE, target_instances=2) for _ in range(3)]
    deadline = time.monotonic() + 120
    while "sleeping" not in jobs[0].get_logs():  # running, and its first output is on the stage
        assert time.monotonic() < deadline, "the first job never ran"
        time.sleep(0.3)
    assert jobs[0].status == JobStatus.RUNNING
    assert {j.status for j in jobs[1:]} == {JobStatus.PENDING}, "two-node jobs wait in turn"
    runner = CliRunner()
    refused = runner.invoke(cli, ["pool", "stop", POOL])
    assert refused.exit_code == 1, "jobs run on it: the CLI asks for --force"
    assert "pass --force" in str(refused.exception)
    stopped = runner.invoke(cli, ["pool", "stop", POOL, "--force"])
    assert stopped.exit_code == 0, stopped.output
    ended = {}
    for job in jobs:
        status = get_job(job.id).status
        assert status == JobStatus.INTERNAL_ERROR, f"{job.id} is {status} after the pool stopped"
        ended[job.id] = (status, get_job(job.id).details()["message"])
    assert (
        ended[jobs[0].id][1] == f"compute pool {POOL} was stopped while the job was RUNNING; submit it again"
    )
    for job in jobs[1:]:
        assert (
            ended[job.id][1] == f"compute pool {POOL} was stopped while the job was PENDING; submit it again"
        )
    assert "sleeping" in get_job(jobs[0].id).get_logs(), "the running job's logs are kept"
    started = runner.invoke(cli, ["pool", "start", POOL])
    assert started.exit_code == 0, started.output
    for job in jobs:
        again = get_job(job.id)
        assert (again.status, again.details()["message"]) == ended[job.id], "a restart changes no record"
    after = submit_file(script(tmp_path, "after.py", "print('after the restart')\n"), POOL, stage_name=STAGE)
    assert after.wait(timeout=180) == JobStatus.DONE
    assert "after the restart" in after.get_logs()

"""The command line's exit code follows the outcome of the work it waited for, through the real
``shoal`` script on a real 1-node pool: a failed job exits 1 with one line, a cancelled job's result
says so, a pool with running jobs is not stopped without ``--force``, ``--follow`` streams a job's
log to its end, and ``job logs -f`` stops quietly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import shoal
from pool_helpers import pool_in_new_home
from waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "CLIOUT"
SHOAL = Path(sys.executable).parent / "shoal"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("cli-outcomes"), POOL, 1)


@pytest.fixture(autouse=True)
def _pool_running(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test uses the module's workspace and finds the pool running (one of them stops it)."""
    monkeypatch.setenv("SHOAL_HOME", str(home))
    if shoal.describe_compute_pool(POOL)["state"] != "ACTIVE":
        shoal.start_compute_pool(POOL)


def shoal_cli(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SHOAL_DEBUG"}
    return subprocess.run(
        [str(SHOAL), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def submit(script: Path, *extra: str) -> str:
    done = shoal_cli("job", "submit", str(script), "--pool", POOL, "--json", *extra)
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["id"])


def wait_running(job_id: str) -> None:
    wait_until(
        lambda: json.loads(shoal_cli("job", "status", job_id, "--json").stdout)["status"] == "RUNNING",
        f"job {job_id} to run",
        120,
    )


def test_a_job_that_fails_exits_1_with_one_line(tmp_path: Path) -> None:
    script = tmp_path / "boom.py"
    script.write_text("raise ValueError('no rows for store 7')\n")
    done = shoal_cli("job", "submit", str(script), "--pool", POOL, "--wait")
    assert done.returncode == 1
    line = one_error_line(done)
    job_id = next(ln for ln in done.stderr.splitlines() if ln.startswith("submitted ")).split()[1]
    assert line.startswith(f"Error: job {job_id} ended FAILED: "), line
    assert "ValueError('no rows for store 7')" in line, "the job's own error"
    assert line.endswith(f"its log: shoal job logs {job_id}"), line
    assert done.stdout == "", "no result on stdout"
    result = shoal_cli("job", "result", job_id)
    assert result.returncode == 1
    assert "ValueError: no rows for store 7" in one_error_line(result)


def test_follow_streams_the_log_to_the_end_and_prints_the_result(tmp_path: Path) -> None:
    script = tmp_path / "talk.py"
    script.write_text("for i in range(3):\n    print('line', i, flush=True)\n__return__ = {'said': 3}\n")
    done = shoal_cli("job", "submit", str(script), "--pool", POOL, "--follow")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [line for line in lines if line.startswith("line ")] == ["line 0", "line 1", "line 2"]
    assert json.loads(lines[-1]) == {"said": 3}, "the result comes last, after the log"


def test_a_pool_with_a_running_job_needs_force_and_a_cancelled_job_has_no_result(tmp_path: Path) -> None:
    script = tmp_path / "sleepy.py"
    script.write_text("import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n")
    job_id = submit(script)
    wait_running(job_id)
    refused = shoal_cli("pool", "stop", POOL)
    assert refused.returncode == 1
    line = one_error_line(refused)
    assert f"{job_id} (RUNNING)" in line, line
    assert "pass --force" in line, line
    assert shoal.describe_compute_pool(POOL)["state"] == "ACTIVE", "the pool was left running"

    cancelled = shoal_cli("job", "cancel", job_id, "--json")
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["id"] == job_id
    wait_until(
        lambda: json.loads(shoal_cli("job", "status", job_id, "--json").stdout)["status"] == "CANCELLED",
        f"job {job_id} to end CANCELLED",
        60,
    )
    result = shoal_cli("job", "result", job_id)
    assert result.returncode == 1
    assert one_error_line(result) == f"Error: Job {job_id} was cancelled: it has no result"


def test_stopping_the_pool_under_a_job_with_force_ends_it_internal_error(tmp_path: Path) -> None:
    script = tmp_path / "sleepy.py"
    script.write_text("import time\ntime.sleep(300)\n")
    job_id = submit(script)
    wait_running(job_id)
    stopped = shoal_cli("pool", "stop", POOL, "--force")
    assert stopped.returncode == 0, stopped.stderr
    status = json.loads(shoal_cli("job", "status", job_id, "--json").stdout)
    assert status["status"] == "INTERNAL_ERROR", status
    assert status["message"] == f"compute pool {POOL} was stopped while the job was RUNNING; submit it again"


def test_following_a_log_stops_quietly_on_sigterm(tmp_path: Path) -> None:
    script = tmp_path / "sleepy.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(300)\n")
    job_id = submit(script)
    env = {k: v for k, v in os.environ.items() if k != "SHOAL_DEBUG"}
    follower = subprocess.Popen(
        [str(SHOAL), "job", "logs", job_id, "-f"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        seen = ""
        deadline = time.monotonic() + 120
        assert follower.stdout is not None
        while "started" not in seen:
            assert time.monotonic() < deadline, f"the follower never printed the job's output: {seen!r}"
            seen += follower.stdout.readline()
        follower.send_signal(signal.SIGTERM)
        _, err = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
        shoal_cli("job", "cancel", job_id)
    assert follower.returncode == 0
    assert err == "", "no traceback, no message"

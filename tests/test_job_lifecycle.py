"""A job's lifecycle (:mod:`shoal.jobs.lifecycle`) driven with a fake seam and a fake clock.

No Ray: the fake :class:`JobNodes` below grants nodes, runs "payloads" and fails on command; the
status documents are real files on a real local stage. Each test runs in milliseconds.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from shoal.jobs import results
from shoal.jobs.lifecycle import JobLifecycle
from shoal.jobs.spec import JobSpec, LaunchSpec
from shoal.jobs.status import read_status
from shoal.plugin_manager import PluginManifest
from shoal.stages import Stage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeNodes:
    """Grants nodes when ``free`` allows; records every call in ``calls``."""

    def __init__(self, clock: Clock, free: int = 3, total: int = 3) -> None:
        self.clock = clock
        self.free = free
        self.total = total
        self.calls: list[str] = []
        self.wanted = 0
        self.exit_code = 0
        self.fail: dict[str, Exception] = {}
        self.on_run: Any = None
        self.stopped = threading.Event()
        self.launch: LaunchSpec | None = None
        self.env: dict[str, str] = {}

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    def request(self, count: int) -> None:
        self._call(f"request {count}")
        self.wanted = count

    def wait_granted(self, timeout_s: float) -> list[str] | None:
        self.clock.now += timeout_s
        if self.free >= self.wanted:
            return [f"node-{i}" for i in range(self.wanted)]
        return None

    def withdraw(self) -> None:
        self.calls.append("withdraw")

    def free_nodes(self) -> int:
        return self.free

    def pool_nodes(self) -> int:
        return self.total

    def begin(self, node_ids: list[str]) -> list[str]:
        self._call("begin")
        return node_ids

    def prepare_payload(self) -> str:
        self._call("prepare")
        return "/tmp/app"

    def run_payload(self, launch_json: str, env: dict[str, str]) -> int:
        self._call("run")
        self.launch, self.env = LaunchSpec.from_json(launch_json), env
        if self.on_run is not None:
            self.on_run()
        return -15 if self.stopped.is_set() else self.exit_code

    def stop_payload(self) -> None:
        self._call("stop")
        self.stopped.set()

    def finish_logs(self) -> None:
        self._call("finish_logs")

    def end(self) -> None:
        self._call("end")


@pytest.fixture
def stage(tmp_path: Path) -> Stage:
    return Stage("JOBS", (tmp_path / "stage").as_uri())


def make_spec(stage: Stage, target: int = 3, minimum: int = 3, timeout: float = 100.0) -> JobSpec:
    common: dict[str, Any] = {
        "job_id": "train_ab12",
        "job_name": "train_ab12",
        "job_dir": "train_ab12",
        "stage_name": stage.name,
        "stage_url": stage.url,
        "compute_pool": "POOL",
        "target_instances": target,
        "min_instances": minimum,
    }
    launch = LaunchSpec(
        **common,
        kind="function",
        entrypoint="",
        args=[],
        worker_env={"USER_VAR": "1"},
        shared_filesystem=True,
        plugin_manifest=PluginManifest(plugins=()),
    )
    return JobSpec(
        **common,
        created_time=1.0,
        node_resource="shoal-pool-POOL",
        instances_timeout=timeout,
        env={"RAY_ADDRESS": "127.0.0.1:1"},
        launch=launch,
    )


def run(job: JobLifecycle) -> str:
    if not job.reserve():
        return read_status(job.stage, job.spec.job_dir).status.value
    return job.execute()


def status_of(stage: Stage) -> dict[str, Any]:
    return read_status(stage, "train_ab12").details()


def test_a_job_that_gets_its_nodes_runs_and_releases_them_after_its_logs(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    assert run(JobLifecycle(make_spec(stage), nodes, clock=clock)) == "DONE"
    assert nodes.calls == ["request 3", "begin", "prepare", "run", "finish_logs", "end"]
    doc = status_of(stage)
    assert doc["status"] == "DONE"
    assert doc["instances"] == 3
    assert doc["node_ids"] == ["node-0", "node-1", "node-2"]
    assert nodes.launch is not None
    assert nodes.launch.app_dir == "/tmp/app"
    assert nodes.launch.worker_env["USER_VAR"] == "1", "the user's variables reach the workers"
    assert nodes.launch.worker_env["SHOAL_JOB_NODE_IDS"] == "node-0,node-1,node-2"
    assert nodes.env["SHOAL_INSTANCE_ID"] == "0"
    assert nodes.env["SNOWFLAKE_JOBS_COUNT"] == "3"


def test_settles_for_min_instances_after_a_share_of_the_wait(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock, free=2)
    job = JobLifecycle(make_spec(stage, target=3, minimum=2, timeout=100.0), nodes, clock=clock)
    assert run(job) == "DONE"
    assert nodes.calls[:3] == ["request 3", "withdraw", "request 2"]
    assert 1025.0 <= clock.now < 1030.0, "it settled a quarter into the wait, not at its end"
    assert status_of(stage)["instances"] == 2


def test_no_nodes_by_the_deadline_fails_with_what_to_do(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock, free=1)
    assert run(JobLifecycle(make_spec(stage, timeout=10.0), nodes, clock=clock)) == "FAILED"
    doc = status_of(stage)
    assert "got 1 of the 3 node(s) it needs" in doc["message"]
    assert "2 of them reserved by other jobs" in doc["message"]
    assert "begin" not in nodes.calls
    assert nodes.calls[-1] == "end"
    with pytest.raises(RuntimeError, match="got 1 of the 3"):
        results.read_result(stage, "train_ab12")


def test_cancel_while_waiting_for_nodes_never_begins(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock, free=0)
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    original = nodes.wait_granted

    def wait_then_cancel(timeout_s: float) -> list[str] | None:
        job.cancel()
        return original(timeout_s)

    nodes.wait_granted = wait_then_cancel  # type: ignore[method-assign]
    assert job.reserve() is False
    assert status_of(stage)["status"] == "CANCELLED"
    assert "begin" not in nodes.calls
    assert "withdraw" in nodes.calls


def test_cancel_between_begin_and_payload_keeps_the_payload_from_starting(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    original = nodes.begin

    def begin_then_cancel(node_ids: list[str]) -> list[str]:
        answer = original(node_ids)
        job.cancel()  # the agents are not serving yet: nothing to stop, but nothing may start
        return answer

    nodes.begin = begin_then_cancel  # type: ignore[method-assign]
    assert run(job) == "CANCELLED"
    assert "run" not in nodes.calls
    assert "stop" not in nodes.calls
    assert nodes.calls[-2:] == ["finish_logs", "end"]
    assert status_of(stage)["message"] == "cancelled before start"


def test_cancel_while_running_stops_the_payload(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    nodes.on_run = job.cancel
    assert run(job) == "CANCELLED"
    assert nodes.calls.index("stop") > nodes.calls.index("run")
    assert status_of(stage)["exit_code"] == -15


def test_a_pool_that_stops_under_a_running_job_ends_it_internal_error_through_its_lifecycle(
    stage: Stage,
) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    nodes.on_run = lambda: job.abandon("compute pool POOL was stopped")
    assert run(job) == "INTERNAL_ERROR", "the payload's kill is not taken for its own failure"
    doc = status_of(stage)
    assert doc["status"] == "INTERNAL_ERROR"
    assert doc["message"] == "compute pool POOL was stopped while the job was RUNNING; submit it again"
    assert nodes.calls.index("stop") > nodes.calls.index("run")
    assert nodes.calls[-2:] == ["finish_logs", "end"]
    assert job.abandon("compute pool POOL was dropped") == "INTERNAL_ERROR"
    assert status_of(stage)["message"].startswith("compute pool POOL was stopped"), "an end stays"


def test_a_job_abandoned_while_it_waits_for_nodes_never_starts(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock, free=1)
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    original = nodes.wait_granted

    def abandon_while_waiting(timeout_s: float) -> list[str] | None:
        job.abandon("compute pool POOL was dropped")
        return original(timeout_s)

    nodes.wait_granted = abandon_while_waiting  # type: ignore[method-assign]
    assert run(job) == "INTERNAL_ERROR"
    assert "begin" not in nodes.calls
    assert "run" not in nodes.calls
    assert "stop" not in nodes.calls, "nothing served the job: nothing to stop"
    assert status_of(stage)["message"] == (
        "compute pool POOL was dropped while the job was PENDING; submit it again"
    )


def test_a_cancel_that_cannot_reach_the_payload_is_a_warning_not_silence(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    nodes.fail["stop"] = ConnectionError("node 2 is gone")
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    nodes.on_run = job.cancel
    assert run(job) == "CANCELLED"
    assert status_of(stage)["warnings"] == ["stopping the payload failed: ConnectionError: node 2 is gone"]


def test_logs_that_cannot_be_finished_are_a_warning_and_the_job_still_ends(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    nodes.fail["finish_logs"] = TimeoutError("agent did not answer")
    assert run(JobLifecycle(make_spec(stage), nodes, clock=clock)) == "DONE"
    doc = status_of(stage)
    assert doc["warnings"] == ["finishing the instances' logs failed: TimeoutError: agent did not answer"]
    assert nodes.calls[-1] == "end"


@pytest.mark.parametrize(
    ("exit_code", "message"),
    [
        (3, "the payload process exited with code 3"),
        (-9, "the payload process was killed by signal 9 (SIGKILL)"),
    ],
)
def test_a_payload_that_fails_is_failed_with_why(stage: Stage, exit_code: int, message: str) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    nodes.exit_code = exit_code
    assert run(JobLifecycle(make_spec(stage), nodes, clock=clock)) == "FAILED"
    assert status_of(stage)["message"].startswith(message)


def test_machinery_failure_is_internal_error_and_the_nodes_are_still_released(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    nodes.fail["begin"] = RuntimeError("agent of node-1 died")
    assert run(JobLifecycle(make_spec(stage), nodes, clock=clock)) == "INTERNAL_ERROR"
    doc = status_of(stage)
    assert doc["message"] == "RuntimeError: agent of node-1 died"
    assert "agent of node-1 died" in doc["supervisor_traceback"]
    assert nodes.calls[-1] == "end"


def test_a_finished_job_is_not_cancelled_again(stage: Stage) -> None:
    clock = Clock()
    nodes = FakeNodes(clock)
    job = JobLifecycle(make_spec(stage), nodes, clock=clock)
    assert run(job) == "DONE"
    assert job.cancel() == "DONE"
    assert status_of(stage)["status"] == "DONE"


def test_specs_round_trip_through_json(stage: Stage) -> None:
    spec = make_spec(stage)
    assert JobSpec.from_json(spec.to_json()) == spec
    assert LaunchSpec.from_json(spec.launch.to_json()) == spec.launch


class PausingStage:
    """A stage whose status reads, in the thread named ``slow``, wait for ``go`` after reading."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.read_done = threading.Event()
        self.go = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stage, name)

    def read_text(self, path: str) -> str:
        text = self.stage.read_text(path)
        if threading.current_thread().name == "slow":
            self.read_done.set()
            assert self.go.wait(10), "the test never let the slow writer go on"
        return text


def test_a_late_cancel_write_never_lands_on_a_final_status(stage: Stage) -> None:
    """Two writers in one process (the supervisor's run and cancel threads): the cancel has read
    RUNNING when the run writes DONE; its write must not replace DONE with CANCELLING."""
    from shoal.jobs.status import JobStatus, write_status

    write_status(stage, "train_ab12", JobStatus.RUNNING)
    pausing = PausingStage(stage)
    slow = threading.Thread(
        target=write_status, args=(pausing, "train_ab12", JobStatus.CANCELLING), name="slow", daemon=True
    )
    slow.start()
    assert pausing.read_done.wait(10), "the cancel's writer never read the document"
    final = threading.Thread(target=write_status, args=(stage, "train_ab12", JobStatus.DONE), daemon=True)
    final.start()
    final.join(0.5)  # with the writers ordered it waits for the cancel's write; without, it is done
    pausing.go.set()
    slow.join(10)
    final.join(10)
    assert not slow.is_alive(), "the cancel's writer never finished"
    assert not final.is_alive(), "the final writer never finished"
    assert status_of(stage)["status"] == "DONE"

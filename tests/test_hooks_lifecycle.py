"""The dispatch of lifecycle hooks: implementations get the right records, may take fewer
arguments, and a failing one is logged without stopping the others. That the hooks fire during
real jobs and runs is tested on pools: tests/test_pools.py (job hooks) and
tests/test_hooks_on_runs.py (run and partition hooks)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shoal import hookimpl, hooks
from shoal.contributions import JobInfo, PartitionInfo, RunInfo
from shoal.testing import temporary_plugin

JOB = JobInfo(
    job_id="J1", name="train_ab12", compute_pool="P", stage_name="S", target_instances=3, min_instances=2
)
RUN = RunInfo(run_id="r1", stage_name="S", mode="sql", num_partitions=4)
PART = PartitionInfo(run_id="r1", partition_id="store/7", attempt=2, stage_path_prefix="@S/r1/store/7")
ERROR = ValueError("bad")


class Recorder:
    """Implements every lifecycle hook and records its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    @hookimpl
    def shoal_before_job(self, job: JobInfo) -> None:
        self.calls.append(("before_job", (job,)))

    @hookimpl
    def shoal_after_job(self, job: JobInfo, status: str) -> None:
        self.calls.append(("after_job", (job, status)))

    @hookimpl
    def shoal_on_job_error(self, job: JobInfo, error: BaseException) -> None:
        self.calls.append(("on_job_error", (job, error)))

    @hookimpl
    def shoal_before_run(self, run: RunInfo) -> None:
        self.calls.append(("before_run", (run,)))

    @hookimpl
    def shoal_after_run(self, run: RunInfo, status: str) -> None:
        self.calls.append(("after_run", (run, status)))

    @hookimpl
    def shoal_on_run_error(self, run: RunInfo, error: BaseException) -> None:
        self.calls.append(("on_run_error", (run, error)))

    @hookimpl
    def shoal_before_partition(self, partition: PartitionInfo) -> None:
        self.calls.append(("before_partition", (partition,)))

    @hookimpl
    def shoal_after_partition(self, partition: PartitionInfo, status: str) -> None:
        self.calls.append(("after_partition", (partition, status)))

    @hookimpl
    def shoal_on_partition_error(self, partition: PartitionInfo, error: BaseException) -> None:
        self.calls.append(("on_partition_error", (partition, error)))


class Broken:
    """Raises from every hook it implements, to show failures are contained."""

    @hookimpl(tryfirst=True)
    def shoal_before_job(self, job: JobInfo) -> None:
        raise RuntimeError("observer crashed")


@pytest.fixture
def recorder() -> Any:
    rec = Recorder()
    with temporary_plugin(rec, "recorder"):
        yield rec


def test_hook_shoal_before_job(recorder: Recorder, caplog: pytest.LogCaptureFixture) -> None:
    with temporary_plugin(Broken(), "broken"), caplog.at_level(logging.ERROR):
        hooks.notify_before_job(JOB)
    assert recorder.calls == [("before_job", (JOB,))], "a crashing observer must not stop the others"
    assert "lifecycle hook shoal_before_job of plugin 'broken'" in caplog.text
    assert "observer crashed" in caplog.text


def test_hook_shoal_after_job(recorder: Recorder) -> None:
    hooks.notify_after_job(JOB, "DONE")
    assert recorder.calls == [("after_job", (JOB, "DONE"))]


def test_hook_shoal_on_job_error(recorder: Recorder) -> None:
    hooks.notify_job_error(JOB, ERROR)
    assert recorder.calls == [("on_job_error", (JOB, ERROR))]


def test_hook_implementations_may_take_fewer_arguments() -> None:
    seen: list[str] = []

    class StatusOnly:
        @hookimpl
        def shoal_after_run(self, status: str) -> None:
            seen.append(status)

    with temporary_plugin(StatusOnly(), "status-only"):
        hooks.notify_after_run(RUN, "CANCELLED")
    assert seen == ["CANCELLED"]

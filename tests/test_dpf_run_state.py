"""How a DPFRun on the driver tells a run's status from its state.json and its job's status, when
the scheduler's heartbeat is late (no cluster: the records are files, the job a stand-in)."""

from __future__ import annotations

import time

import pytest

from shoal.dpf import layout
from shoal.dpf.definition import RunDefinition, write_definition
from shoal.dpf.entities import ExecutionOptions, RunStatus
from shoal.dpf.progress import ProgressReader, write_state
from shoal.dpf.run import HEARTBEAT_STALE_S, DPFRun
from shoal.dpf.specs import RunSpec
from shoal.stages import create_stage

RUN = "late_heartbeat"


class EndedJob:
    id = "dpf_job_1"

    def details(self) -> dict[str, str]:
        return {"message": "the payload returned"}


def started_run() -> DPFRun:
    """A run with no partitions whose scheduler last wrote IN_PROGRESS, a heartbeat ago too old."""
    stage = create_stage("runstate")
    spec = RunSpec(RUN, stage.name, stage.url, "sql", ExecutionOptions(), "{}")
    write_definition(stage, RunDefinition(RUN, "sql", time.time(), "POOL", "f", 0, spec, job_id=EndedJob.id))
    layout.write_json(stage, layout.internal(RUN, "partitions.json"), [])
    write_state(stage, RUN, status="IN_PROGRESS", heartbeat=time.time() - 2 * HEARTBEAT_STALE_S, seq=0)
    run = DPFRun(stage, RUN)
    run._job = EndedJob()
    return run


def test_a_job_that_ended_after_the_state_was_read_leaves_the_schedulers_last_word(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The driver read IN_PROGRESS; then the scheduler wrote SUCCESS and its job ended DONE: the
    run is SUCCESS, not INTERNAL_ERROR (as a multi-host CI run once found)."""
    run = started_run()
    real_state = ProgressReader.state
    reads = []

    def state_then_the_end(reader: ProgressReader) -> dict[str, object]:
        state = real_state(reader)
        reads.append(state.get("status"))
        if len(reads) == 1:  # the scheduler finishes right after the driver's first read
            write_state(reader.stage, RUN, status="SUCCESS", message="", counts={}, seq=1)
        return state

    monkeypatch.setattr(ProgressReader, "state", state_then_the_end)
    monkeypatch.setattr(DPFRun, "_job_state", lambda self: "DONE")
    assert run.status == RunStatus.SUCCESS
    assert reads[0] == "IN_PROGRESS"


def test_a_job_that_ended_with_the_run_unfinished_is_internal_error_saying_how_to_resume(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run = started_run()
    monkeypatch.setattr(DPFRun, "_job_state", lambda self: "FAILED")
    assert run.status == RunStatus.INTERNAL_ERROR
    assert f"its job {EndedJob.id} ended FAILED: the payload returned" in run.message
    assert f"DPFRun.restore_from({RUN!r}, 'RUNSTATE').resume() continues it" in run.message

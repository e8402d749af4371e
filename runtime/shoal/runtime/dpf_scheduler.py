"""The DPF run scheduler: wires a run's state machine, its Ray worker group and its progress log.

It reads the run's partitions and (for a resumed run) the earlier records, starts the session
host for ``with_session`` on its own node, runs the :class:`~shoal.dpf.engine.controller.Controller`
to the end, writes the ``local_testing`` session journal, sweeps cut-off attempts and flushes
the final status. Every way out leaves every partition final and the run in a final status.

Runs in the job's payload process on the head node (instance 0): as the job's entry point
(:func:`run_scheduler`), or on a thread of a payload that called ``DPF.run`` itself.
"""

from __future__ import annotations

import json
import logging
import os
import time

from shoal.dpf import layout
from shoal.dpf.attempts import fence_attempts, sweep_attempts
from shoal.dpf.engine.controller import Controller
from shoal.dpf.engine.policies import RetryPolicy, StopPolicy, WorkerLossPolicy
from shoal.dpf.engine.state import RunState
from shoal.dpf.entities import PartitionRecord, PartitionStatus, RunStatus
from shoal.dpf.progress import ProgressReader, ProgressWriter
from shoal.dpf.specs import PartitionInput, RunSpec
from shoal.stages import Stage

log = logging.getLogger(__name__)


def load_inputs(stage: Stage, run_id: str) -> list[PartitionInput]:
    text = stage.read_text(layout.internal(run_id, "partitions.json"))
    return [PartitionInput.from_dict(item) for item in json.loads(text)]


def previous_records(
    stage: Stage, run_id: str, inputs: list[PartitionInput], reader: ProgressReader
) -> dict[int, PartitionRecord]:
    """Records of an earlier driver of this run. A DONE partition whose ``train.log`` is missing
    (its files were lost) runs again. An unreadable record counts as nothing done."""
    records = dict(reader.refresh(strict=False))
    done = {i: r for i, r in records.items() if r.status == PartitionStatus.DONE}
    if not done:
        return records
    present = set(stage.list(run_id, pattern=layout.LOG_FILE))
    by_index = {p.index: p for p in inputs}
    for index in list(done):
        item = by_index.get(index)
        if item is None or f"{layout.artifact_dir(run_id, item.folder)}/{layout.LOG_FILE}" not in present:
            records.pop(index, None)
    return records


class Scheduler:
    """One run of the DPF engine on Ray."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.stage = Stage(spec.stage_name, spec.stage_url)
        self.run_id = spec.run_id
        self.options = spec.execution_options
        self.inputs = load_inputs(self.stage, self.run_id)
        earlier = ProgressReader(self.stage, self.run_id)  # read once: for the state and the writer
        self.state = RunState(
            self.inputs,
            previous_records(self.stage, self.run_id, self.inputs, earlier),
            retry=RetryPolicy.from_options(self.options),
            loss=WorkerLossPolicy(),
            stop=StopPolicy(self.options.fail_fast),
        )
        self.progress = ProgressWriter(
            self.stage, self.run_id, job_id=spec.job_id, started_at=time.time(), previous=earlier
        )

    def cancel_requested(self) -> bool:
        return self.stage.exists(layout.internal(self.run_id, "cancel"))

    def run(self) -> RunStatus:
        """Drive the run to its end; the run hooks fire here (the process driving the run)."""
        from shoal import hooks
        from shoal.contributions import RunInfo

        info = RunInfo(
            run_id=self.run_id,
            stage_name=self.stage.name,
            mode=self.spec.mode,
            num_partitions=len(self.inputs),
        )
        hooks.notify_before_run(info)
        status = RunStatus.INTERNAL_ERROR
        try:
            status = self._drive()
        except Exception as exc:  # could not even start, or its records cannot be written
            log.exception("the DPF scheduler of run %s failed", self.run_id)
            hooks.notify_run_error(info, exc)
            status = self._abort(exc)
        finally:  # a run that ended, however it ended
            hooks.notify_after_run(info, status.value)
        return status

    def _drive(self) -> RunStatus:
        from shoal.runtime.dpf_workers import worker_group

        group = worker_group(self.spec, self.options)
        controller = Controller(
            self.state,
            group,
            self.progress,
            cancel_requested=self.cancel_requested,
            before_final_flush=self._finish,
            fence=lambda attempts: fence_attempts(self.stage, self.run_id, attempts),
        )
        return controller.run()

    def _abort(self, exc: Exception) -> RunStatus:
        """The scheduler failed: a final status and a message, written if the record can be."""
        self.state.abort(f"the scheduler failed ({type(exc).__name__}: {exc}); resume the run to continue it")
        status = self.state.finish()
        self._finish()
        try:
            self.progress.flush(self.state.take_dirty(), status, self.state.message, self.state.counts())
        except Exception:  # the record itself is what failed: readers see the driver gone
            log.exception("the final status of run %s could not be written", self.run_id)
        return status

    def _finish(self) -> None:
        """Before the final status is written: the session journal, and no cut-off attempt left."""
        try:
            self._stop_session_host()
        except Exception:
            log.exception("stopping the session host of run %s failed", self.run_id)
        try:
            sweep_attempts(self.stage, self.run_id)
        except Exception:
            log.exception("sweeping the attempts of run %s failed", self.run_id)

    def _stop_session_host(self) -> None:
        """Write the ``local_testing`` journal for ``DPFRun.wait`` to replay, and remove the host."""
        if not self.spec.session_kind:
            return
        import cloudpickle
        import ray

        from shoal.runtime.partition_worker import session_host

        host = session_host(self.spec, create=False)
        if host is None:
            return
        try:
            journal = ray.get(host.journal.remote(), timeout=60)
            if journal:
                path = layout.internal(self.run_id, "session_journal.pkl")
                self.stage.write_bytes(path, cloudpickle.dumps(journal))
            ray.get(host.close.remote(), timeout=60)
        finally:
            ray.kill(host)


def run_scheduler(spec_json: str) -> str:
    """Entry point of a run's job: schedule every partition; return the run's final status."""
    import ray

    ray.init(address="auto", ignore_reinit_error=True)
    spec = RunSpec.from_json(spec_json)
    here = str(ray.get_runtime_context().get_node_id())
    return Scheduler(spec.with_job(os.environ.get("SHOAL_JOB_ID") or spec.job_id, here)).run().value

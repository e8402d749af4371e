"""Retry a finished run's failed partitions as a new run, linked both ways (driver).

:func:`retry_failed` (``DPFRun.retry_failed``) starts a run of the same function, options and
pool over the old run's ``FAILED`` and ``INTERNAL_ERROR`` partitions only, with the same inputs:
the same stage files in stage mode (``run_from_stage(partition_ids=...)`` would pick the same),
and the old run's own input files in SQL mode (they stay in the old run's folder, so that folder
must be kept until the retry ends). The old run's partitions that succeeded are not touched.

The new run's definition names the old one (``retry_of``); the old run lists its retries in
``_shoal/retries.json``, appended under the run's id lock before the new run is launched (and taken
out again if the launch fails). Everything is checked before anything is written: a run still in
progress, one whose earlier retry is still in progress, one with no failed partition, or a taken
run id is refused.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

from shoal.dpf import layout
from shoal.dpf.entities import PartitionStatus, RunStatus
from shoal.errors import ConfigError, RunConflictError

if TYPE_CHECKING:
    from shoal.dpf.run import DPFRun

#: the statuses a retry runs again
RETRIED = (PartitionStatus.FAILED, PartitionStatus.INTERNAL_ERROR)
RETRIES_FILE = "retries.json"


def retries_of(run: DPFRun) -> list[str]:
    """The ids of the runs that retried ``run``'s failed partitions, oldest first."""
    found = layout.read_json(run._stage, layout.internal(run.run_id, RETRIES_FILE), []) or []
    return [str(run_id) for run_id in found] if isinstance(found, list) else []


def _new_run_id(run: DPFRun, run_id: str | None) -> str:
    if run_id is not None:
        return layout.check_run_id(run_id)
    taken = set(layout.run_ids(run._stage))
    count = 1
    while f"{run.run_id}_retry{count}" in taken:
        count += 1
    return layout.check_run_id(f"{run.run_id}_retry{count}")


def retry_failed(run: DPFRun, run_id: str | None = None) -> DPFRun:
    """Start a new run (``run_id``, else ``<run>_retry<N>``) of ``run``'s failed partitions."""
    from shoal.dpf.dpf import _claimed
    from shoal.dpf.launch import launch

    if run.status == RunStatus.IN_PROGRESS:
        raise RunConflictError(
            f"DPF run {run.run_id!r} is still in progress; wait for it to end (or cancel it) before "
            f"retrying its failed partitions"
        )
    running = [r for r in retries_of(run) if _in_progress(run, r)]
    if running:
        raise RunConflictError(
            f"DPF run {run.run_id!r} is being retried by run {running[0]!r}, still in progress; wait "
            f"for it (its failed partitions can be retried in turn)"
        )
    failed = {pid for pid, d in run.partition_details.items() if d.status in RETRIED}
    if not failed:
        raise ConfigError(f"DPF run {run.run_id!r} has no FAILED or INTERNAL_ERROR partition to retry")
    new_id = _new_run_id(run, run_id)
    definition = run._required_definition()
    stage = run._stage
    parts = [p for p in run._partition_inputs() if p.partition_id in failed]
    parts = layout.with_folders([dataclasses.replace(p, index=i) for i, p in enumerate(parts)])
    spec = dataclasses.replace(
        definition.spec,
        run_id=new_id,
        session_host=f"shoal-session-{stage.name}-{new_id}" if definition.spec.session_kind else None,
    )
    function = stage.read_bytes(layout.internal(run.run_id, layout.FUNCTION_FILE))
    with _claimed(stage, new_id, "error") as folder:
        folder.clear()
        layout.write_json(stage, layout.internal(new_id, "partitions.json"), [p.to_dict() for p in parts])
        stage.write_bytes(layout.internal(new_id, layout.FUNCTION_FILE), function)
        retried = dataclasses.replace(
            definition,
            run_id=new_id,
            created=time.time(),
            num_partitions=len(parts),
            spec=spec,
            job_id=None,
            retry_of=run.run_id,
        )
        _link(run, new_id, add=True)  # before the launch: a retry is never started unlinked
        try:
            launch(stage, retried)
        except BaseException:
            _link(run, new_id, add=False)
            raise
    return type(run)(stage, new_id)


def _link(run: DPFRun, new_id: str, *, add: bool) -> None:
    """Add ``new_id`` to (or take it from) the old run's list of retries."""
    from shoal.dpf.dpf import _claimed

    with _claimed(run._stage, run.run_id, "overwrite"):  # one writer of the old run's list at a time
        found = [r for r in retries_of(run) if r != new_id]
        layout.write_json(
            run._stage, layout.internal(run.run_id, RETRIES_FILE), found + ([new_id] if add else [])
        )


def _in_progress(run: DPFRun, run_id: str) -> bool:
    from shoal.errors import RecordError, RunNotFoundError

    try:
        return type(run).restore_from(run_id, run.stage_name).status == RunStatus.IN_PROGRESS
    except (RunNotFoundError, RecordError):
        return False

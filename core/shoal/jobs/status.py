"""Job statuses and the job's status document on the stage.

A job's status lives in ``@stage/<job name>/status.json``, a :class:`JobStatusDocument` on the
wire (:mod:`shoal.wire`); any process that can read the stage can follow the job. Statuses are
the reference product's.

**One writer at a time.** The submitting process writes the first document (PENDING) before it
hands the job to its pool's service; from then on only the job's lifecycle in that service
(:class:`shoal.jobs.lifecycle.JobLifecycle`) writes it: its progress, a cancel (which goes
through the lifecycle, never straight to the file), a pool that stops under it, its end. A
driver writes a job's status only when nothing on the cluster drives the job any more (its pool
or the pool's service is gone, or the service no longer knows it), to record how it was lost.
Within the service, the lifecycle's threads take one lock for each read-merge-write, and a
terminal status is never replaced.

Runs on the driver and in the job supervisor.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shoal._enums import StrValueEnum
from shoal.errors import RecordError
from shoal.wire import WireError, WireSpec

if TYPE_CHECKING:
    from shoal.stages import Stage

STATUS_FILE = "status.json"

log = logging.getLogger(__name__)

#: Writers in one process (the supervisor's run and cancel threads) read, merge and write the
#: document one at a time: a cancel's write cannot land on top of a final status written between
#: its read and its write.
_WRITING = threading.Lock()


class JobStatus(StrValueEnum):
    """The status of a multi-node job; compares equal to its plain string (``"DONE"``)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    DONE = "DONE"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DELETED = "DELETED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {JobStatus.FAILED, JobStatus.DONE, JobStatus.CANCELLED, JobStatus.INTERNAL_ERROR, JobStatus.DELETED}
)


@dataclass(frozen=True)
class JobStatusDocument(WireSpec):
    """A job's ``status.json``: its status and what its lifecycle recorded on the way.

    Written by the submitter (PENDING, with what was asked), then by the job's lifecycle on the
    cluster; see the module docstring for who writes when. ``details()`` gives it to users as a
    plain dict (``MLJob.details()``, ``shoal job status``, the web view).
    """

    status: JobStatus = JobStatus.PENDING
    message: str = ""
    #: when the document was last written (seconds since the epoch)
    updated: float | None = None
    created_time: float | None = None
    started_time: float | None = None
    completed_time: float | None = None
    compute_pool: str = ""
    target_instances: int | None = None
    min_instances: int | None = None
    #: what was asked, for ``shoal job status`` and the web view (the variables' names only)
    payload_kind: str = ""
    entrypoint: str | list[str] = ""
    args: tuple[str, ...] = ()
    env_names: tuple[str, ...] = ()
    #: while PENDING: the pool's nodes that no job holds
    nodes_free: int | None = None
    #: once RUNNING: how many instances the job got, and their Ray node ids in instance order
    instances: int | None = None
    node_ids: tuple[str, ...] = ()
    #: the payload's exit code (negative: killed by that signal)
    exit_code: int | None = None
    #: the qualified name of the exception the payload raised, for readers that act on its kind
    error_type: str = ""
    #: the supervisor's own traceback, when the machinery failed (INTERNAL_ERROR)
    supervisor_traceback: str = ""
    #: what went wrong without ending the job (a cancel that could not reach the payload)
    warnings: tuple[str, ...] = ()

    def details(self) -> dict[str, Any]:
        """The document as ``job.details()`` gives it (:meth:`~shoal.wire.WireSpec.to_plain`)."""
        return self.to_plain()


def read_status(stage: Stage, job_dir: str) -> JobStatusDocument:
    """The job's status document (an empty PENDING one if it was not written yet); a document
    that cannot be read (cut short, changed by hand) raises :class:`~shoal.errors.RecordError`
    naming the job and the file."""
    path = f"{job_dir}/{STATUS_FILE}"
    if not stage.exists(path):
        return JobStatusDocument()
    text = stage.read_text(path)
    try:
        return JobStatusDocument.from_json(text)
    except WireError as exc:
        raise RecordError(
            f"@{stage.name}/{path}, the status of job {job_dir!r}, cannot be read ({exc}; {len(text)} "
            f"bytes): it was cut short or changed by hand. A running job rewrites it at its next "
            f"change; for an ended job, delete the job (shoal.jobs.delete_job, `shoal job delete`)."
        ) from None


def _current(stage: Stage, job_dir: str) -> JobStatusDocument:
    """The document a writer updates: an unreadable one is replaced (with a warning), so that the
    job can still record how it ends."""
    try:
        return read_status(stage, job_dir)
    except RecordError as exc:
        log.warning("%s; writing it anew", exc)
        return JobStatusDocument(warnings=(str(exc),))


def _save(stage: Stage, job_dir: str, document: JobStatusDocument) -> None:
    stage.write_text(f"{job_dir}/{STATUS_FILE}", json.dumps(document.to_dict(), indent=2, sort_keys=True))


def write_status(stage: Stage, job_dir: str, status: JobStatus | str, **fields: Any) -> JobStatusDocument:
    """Merge ``fields`` (names of :class:`JobStatusDocument`'s fields; another name is a
    ``TypeError``) and ``status`` into the status document; a terminal status is never replaced.
    Only the job's current writer calls this (module docstring)."""
    status = JobStatus(status)
    with _WRITING:
        current = _current(stage, job_dir)
        if current.status.is_terminal:
            return current
        now = time.time()
        if status.is_terminal and not current.completed_time:
            fields.setdefault("completed_time", now)
        for name in ("args", "env_names", "node_ids", "warnings"):
            if name in fields:
                fields[name] = tuple(fields[name])
        document = dataclasses.replace(current, status=status, updated=now, **fields)
        _save(stage, job_dir, document)
        return document


def add_warning(stage: Stage, job_dir: str, message: str) -> None:
    """Keep ``message`` in the status document's ``warnings`` (whatever the status: a warning
    never changes it): something went wrong that did not end the job, such as a failed cancel."""
    with _WRITING:
        current = _current(stage, job_dir)
        _save(
            stage,
            job_dir,
            dataclasses.replace(current, warnings=(*current.warnings, message), updated=time.time()),
        )

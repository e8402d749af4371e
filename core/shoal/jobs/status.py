"""Job statuses and the job's status document on the stage.

A job's status lives in ``@stage/<job name>/status.json``, written by the submitting process
(PENDING) and then by the job's supervisor on the cluster; any process that can read the stage
can follow the job. Statuses are the reference product's.

Runs on the driver and in the job supervisor.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from shoal._enums import StrValueEnum
from shoal.errors import RecordError

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


def read_status(stage: Stage, job_dir: str) -> dict[str, Any]:
    """The job's status document (an empty PENDING one if it was not written yet); a document
    that cannot be read (cut short, changed by hand) raises :class:`~shoal.errors.RecordError`
    naming the job and the file."""
    path = f"{job_dir}/{STATUS_FILE}"
    if not stage.exists(path):
        return {"status": JobStatus.PENDING.value, "message": ""}
    text = stage.read_text(path)
    try:
        document = json.loads(text)
        if not isinstance(document, dict):
            raise ValueError(f"a JSON object was expected, not {type(document).__name__}")
        JobStatus(document.get("status", JobStatus.PENDING.value))
    except ValueError as exc:
        raise RecordError(
            f"@{stage.name}/{path}, the status of job {job_dir!r}, cannot be read ({exc}; {len(text)} "
            f"bytes): it was cut short or changed by hand. A running job rewrites it at its next "
            f"change; for an ended job, delete the job (shoal.jobs.delete_job, `shoal job delete`)."
        ) from None
    return document


def _current(stage: Stage, job_dir: str) -> dict[str, Any]:
    """The document a writer updates: an unreadable one is replaced (with a warning), so that the
    job can still record how it ends."""
    try:
        return read_status(stage, job_dir)
    except RecordError as exc:
        log.warning("%s; writing it anew", exc)
        return {"status": JobStatus.PENDING.value, "message": "", "warnings": [str(exc)]}


def write_status(stage: Stage, job_dir: str, status: JobStatus | str, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` and ``status`` into the status document; a terminal status is never replaced."""
    with _WRITING:
        current = _current(stage, job_dir)
        if JobStatus(current.get("status", "PENDING")).is_terminal:
            return current
        current.update(fields)
        current["status"] = JobStatus(status).value
        current["updated"] = time.time()
        if JobStatus(status).is_terminal and not current.get("completed_time"):
            current["completed_time"] = time.time()
        stage.write_text(f"{job_dir}/{STATUS_FILE}", json.dumps(current, indent=2, sort_keys=True))
        return current


def add_warning(stage: Stage, job_dir: str, message: str) -> None:
    """Keep ``message`` in the status document's ``warnings`` (whatever the status: a warning
    never changes it): something went wrong that did not end the job, such as a failed cancel."""
    with _WRITING:
        current = _current(stage, job_dir)
        current["warnings"] = [*current.get("warnings", []), message]
        current["updated"] = time.time()
        stage.write_text(f"{job_dir}/{STATUS_FILE}", json.dumps(current, indent=2, sort_keys=True))

"""The job records: one small JSON file per job in ``$SHOAL_HOME/jobs/``, so any process of this
workspace can list, find, follow and cancel jobs submitted by another; listings go through the
SQLite index beside them (:mod:`shoal.jobs.index`). The job's status, result and logs
themselves live on its stage.

Runs on the driver.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoal.errors import RecordError, ShoalError
from shoal.jobs import index
from shoal.localfiles import write_atomically
from shoal.workspace import workspace_dir


class JobNotFoundError(ShoalError, LookupError):
    """No job of that id in this workspace."""


@dataclass(frozen=True)
class JobRecord:
    """Where a job lives and what was asked of it."""

    id: str
    name: str
    compute_pool: str
    stage_name: str
    stage_url: str
    job_dir: str
    target_instances: int
    min_instances: int
    created_time: float
    owner: str
    payload_kind: str


def _folder() -> Path:
    return workspace_dir("jobs")


def canonical_job_id(job_id: str) -> str:
    """``DB.SCHEMA.NAME`` or ``NAME`` (any case) -> the job's name as recorded."""
    return str(job_id).strip().split(".")[-1]


def save(record: JobRecord) -> None:
    write_atomically(_folder() / f"{record.name}.json", json.dumps(asdict(record), indent=2))
    index.put(_folder(), record.name, record.created_time, asdict(record))


def load(job_id: str) -> JobRecord:
    name = canonical_job_id(job_id)
    exact = _folder() / f"{name}.json"
    if exact.exists():  # the usual case: no need to look at every other record
        return _read(exact)
    for candidate in _folder().glob("*.json"):  # another case of the same name
        if candidate.stem.lower() == name.lower():
            return _read(candidate)
    raise JobNotFoundError(
        f"No job {job_id!r} in this workspace ({_folder()}). List jobs with shoal.jobs.list_jobs() "
        f"or `shoal job ls`."
    )


def _read(path: Path) -> JobRecord:
    """The record in ``path``; :class:`RecordError` naming the job and the file when it cannot be read."""
    try:
        return JobRecord(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:  # cut short, changed by hand, or from another version
        raise RecordError(
            f"The record of job {path.stem!r} ({path}) cannot be read ({type(exc).__name__}: {exc}): it "
            f"was cut short or changed by hand. Restore it, or remove the file; the job's files on its "
            f"stage are kept. `shoal job ls` lists the other jobs."
        ) from None


def newest(limit: int | None = None) -> list[tuple[JobRecord, dict[str, Any] | None]]:
    """The newest ``limit`` jobs (all with None or <= 0), newest first, each with its final
    status document when the job is known to have ended (else None: read it from the stage)."""
    return [(JobRecord(**record), final) for record, final in index.newest(_folder(), limit)]


def keep_final_statuses(statuses: dict[str, dict[str, Any]]) -> None:
    """Remember that these jobs ended, with these status documents (listings then skip their stage)."""
    index.keep_final_statuses(_folder(), {canonical_job_id(k): v for k, v in statuses.items()})


def delete(name: str) -> None:
    (_folder() / f"{canonical_job_id(name)}.json").unlink(missing_ok=True)
    index.remove(_folder(), canonical_job_id(name))


def as_dict(record: JobRecord) -> dict[str, Any]:
    return asdict(record)

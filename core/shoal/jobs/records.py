"""The job index: one small JSON file per job in ``$SHOAL_HOME/jobs/``, so any process of this
workspace can list, find, follow and cancel jobs submitted by another. The job's status,
result and logs themselves live on its stage.

Runs on the driver.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from shoal.errors import ShoalError
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
    fd, tmp = tempfile.mkstemp(dir=_folder(), prefix=".tmp-")
    with os.fdopen(fd, "w") as handle:
        json.dump(asdict(record), handle, indent=2)
    os.replace(tmp, _folder() / f"{record.name}.json")


def load(job_id: str) -> JobRecord:
    name = canonical_job_id(job_id)
    exact = _folder() / f"{name}.json"
    if exact.exists():  # the usual case: no need to look at every other record
        return JobRecord(**json.loads(exact.read_text()))
    for candidate in _folder().glob("*.json"):  # another case of the same name
        if candidate.stem.lower() == name.lower():
            return JobRecord(**json.loads(candidate.read_text()))
    raise JobNotFoundError(
        f"No job {job_id!r} in this workspace ({_folder()}). List jobs with shoal.jobs.list_jobs() "
        f"or `shoal job ls`."
    )


def load_all() -> list[JobRecord]:
    records = []
    for path in _folder().glob("*.json"):
        try:
            records.append(JobRecord(**json.loads(path.read_text())))
        except (OSError, ValueError, TypeError):
            continue
    return sorted(records, key=lambda r: r.created_time, reverse=True)


def delete(name: str) -> None:
    (_folder() / f"{canonical_job_id(name)}.json").unlink(missing_ok=True)


def as_dict(record: JobRecord) -> dict[str, Any]:
    return asdict(record)

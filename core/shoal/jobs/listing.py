"""Listing this workspace's jobs, newest first, fast: through the record index
(:mod:`shoal.jobs.index`), reading the stage only for jobs not known to have ended.

:func:`job_summaries` is what ``shoal job ls`` prints (no pandas: the command stays quick);
``shoal.jobs.list_jobs`` turns the same summaries into the reference product's DataFrame.

Runs on the driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.errors import RecordError
from shoal.jobs import records
from shoal.jobs.status import JobStatus

COLUMNS = [
    "name",
    "status",
    "message",
    "database_name",
    "schema_name",
    "owner",
    "compute_pool",
    "target_instances",
    "created_time",
    "completed_time",
]


@dataclass(frozen=True)
class JobSummary:
    """One row of a job listing (times are Unix seconds)."""

    name: str
    status: str
    message: str
    owner: str
    compute_pool: str
    target_instances: int
    created_time: float
    completed_time: float | None


#: The status listed for a job whose status document cannot be read (its message says why).
UNREADABLE = "UNKNOWN"


def job_summaries(limit: int | None = 10) -> list[JobSummary]:
    """The newest ``limit`` jobs (all with None or <= 0). Jobs that ended are read from the
    index; the others from their stage (and, once they are seen ended, kept in the index). A job
    whose status cannot be read is listed as ``UNKNOWN`` with the reason as its message."""
    summaries: list[JobSummary] = []
    ended: dict[str, dict[str, Any]] = {}
    for record, final in records.newest(limit):
        details = final
        if details is None:
            from shoal.jobs.job import MLJob  # stages and the pool: only for jobs not seen ended

            job: MLJob[Any] = MLJob(record)
            try:
                details = job.details()
            except RecordError as exc:  # one unreadable job never hides the others
                details = {"status": UNREADABLE, "message": str(exc)}
                status = JobStatus.PENDING
            else:
                status = job.shallow_status(details)
            if status.is_terminal:
                if status.value != details.get("status"):  # marked INTERNAL_ERROR just now
                    details = {**job.details(), "status": status.value}
                ended[record.name] = details
        completed = details.get("completed_time")
        summaries.append(
            JobSummary(
                name=record.name,
                status=str(details.get("status", JobStatus.PENDING.value)),
                message=str(details.get("message", "")),
                owner=record.owner,
                compute_pool=record.compute_pool,
                target_instances=record.target_instances,
                created_time=record.created_time,
                completed_time=float(completed) if completed else None,
            )
        )
    if ended:
        records.keep_final_statuses(ended)
    return summaries


def as_frame(summaries: list[JobSummary]) -> Any:
    """The reference product's ``list_jobs`` DataFrame of ``summaries``."""
    import pandas as pd

    from shoal.jobs.job_table import JobTable

    frame = JobTable(
        {
            "name": [s.name for s in summaries],
            "status": [s.status for s in summaries],
            "message": [s.message for s in summaries],
            "database_name": [None] * len(summaries),
            "schema_name": [None] * len(summaries),
            "owner": [s.owner for s in summaries],
            "compute_pool": [s.compute_pool for s in summaries],
            "target_instances": [s.target_instances for s in summaries],
            "created_time": pd.to_datetime([s.created_time for s in summaries], unit="s", utc=True),
            "completed_time": pd.to_datetime(
                [s.completed_time if s.completed_time is not None else float("nan") for s in summaries],
                unit="s",
                utc=True,
            ),
        },
        columns=COLUMNS,
    )
    return frame

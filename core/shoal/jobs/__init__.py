"""Multi-node ML jobs: ``remote``, ``submit_file``, ``submit_directory``, ``MLJob`` and friends.

Follows the reference product's ``snowflake.ml.jobs`` API. Runs on the driver.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shoal.jobs.context import instance_count, instance_id, job_node_ids
    from shoal.jobs.definition import MLJobDefinition, remote
    from shoal.jobs.job import MLJob
    from shoal.jobs.status import JobStatus

    JOB_STATUS = JobStatus

# imported when first used: ``shoal job ls`` reads records and needs none of them (the job
# handle alone brings in stages and the plugin manager)
_LAZY: dict[str, tuple[str, str]] = {
    "instance_count": ("shoal.jobs.context", "instance_count"),
    "instance_id": ("shoal.jobs.context", "instance_id"),
    "job_node_ids": ("shoal.jobs.context", "job_node_ids"),
    "MLJobDefinition": ("shoal.jobs.definition", "MLJobDefinition"),
    "remote": ("shoal.jobs.definition", "remote"),
    "MLJob": ("shoal.jobs.job", "MLJob"),
    "JobStatus": ("shoal.jobs.status", "JobStatus"),
    "JOB_STATUS": ("shoal.jobs.status", "JobStatus"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'shoal.jobs' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value
    return value


__all__ = [
    "JOB_STATUS",
    "JobStatus",
    "MLJob",
    "MLJobDefinition",
    "delete_job",
    "get_job",
    "instance_count",
    "instance_id",
    "job_node_ids",
    "list_jobs",
    "remote",
    "submit_directory",
    "submit_file",
    "submit_from_stage",
]


def submit_file(
    file_path: str | os.PathLike[str],
    compute_pool: str,
    *,
    stage_name: str,
    args: Sequence[str] | None = None,
    target_instances: int = 1,
    **kwargs: Any,
) -> MLJob[Any]:
    """Run a Python file as a job. The file hands back a result by assigning ``__return__``.

    Options: ``min_instances`` (default ``target_instances``), ``env_vars``, ``imports``, ``name``,
    ``instances_timeout`` (seconds to wait for nodes; default 720 or ``SHOAL_INSTANCES_TIMEOUT``).
    """
    from shoal.jobs.payload import file_payload
    from shoal.jobs.submit import submit_payload

    return submit_payload(
        file_payload(file_path, args),
        compute_pool,
        stage_name=stage_name,
        target_instances=target_instances,
        **kwargs,
    )


def submit_directory(
    dir_path: str | os.PathLike[str],
    compute_pool: str,
    *,
    entrypoint: str | list[str],
    stage_name: str,
    args: Sequence[str] | None = None,
    target_instances: int = 1,
    **kwargs: Any,
) -> MLJob[Any]:
    """Run a folder as a job: ``entrypoint`` is a ``.py`` file in it, or a command (list of strings)."""
    from shoal.jobs.payload import directory_payload
    from shoal.jobs.submit import submit_payload

    return submit_payload(
        directory_payload(dir_path, entrypoint, args),
        compute_pool,
        stage_name=stage_name,
        target_instances=target_instances,
        **kwargs,
    )


def submit_from_stage(
    source: str,
    compute_pool: str,
    *,
    entrypoint: str | list[str],
    stage_name: str,
    args: Sequence[str] | None = None,
    target_instances: int = 1,
    **kwargs: Any,
) -> MLJob[Any]:
    """Run a folder that is on a stage (``@stage/path``) as a job, as :func:`submit_directory`
    runs a local one. ``entrypoint`` is a ``.py`` file of the folder, given relative to it
    (``main.py``) or as its stage path (``@stage/path/main.py``), or a command (list of strings).
    Every check runs before anything is fetched or written."""
    import tempfile

    from shoal.stages import resolve_location

    stage, inner = resolve_location(source)
    entry = _entrypoint_in_folder(source, stage.name, inner, entrypoint)
    with tempfile.TemporaryDirectory(prefix="shoal-from-stage-") as folder:
        if not stage.get(inner, folder):  # the folder's files land at the top of ``folder``
            from shoal.errors import ConfigError

            raise ConfigError(f"{source} holds no files to run; put the job's code there first")
        return submit_directory(
            folder,
            compute_pool,
            entrypoint=entry,
            stage_name=stage_name,
            args=args,
            target_instances=target_instances,
            **kwargs,
        )


def _entrypoint_in_folder(
    source: str, stage_name: str, inner: str, entrypoint: str | list[str]
) -> str | list[str]:
    """``entrypoint`` relative to the folder ``inner`` of stage ``stage_name`` (a stage path is
    accepted when it lies in that folder)."""
    if not isinstance(entrypoint, str) or not entrypoint.startswith("@"):
        return entrypoint
    from shoal.errors import ConfigError
    from shoal.stages import resolve_location

    entry_stage, entry_path = resolve_location(entrypoint)
    prefix = f"{inner}/" if inner else ""
    if entry_stage.name != stage_name or not entry_path.startswith(prefix) or entry_path == inner:
        raise ConfigError(
            f"entrypoint {entrypoint} is not in {source}: give it relative to that folder (main.py) or "
            f"as a stage path inside it"
        )
    return entry_path[len(prefix) :]


def get_job(job_id: str, session: Any = None) -> MLJob[Any]:
    """The job ``job_id`` (``NAME`` or ``DB.SCHEMA.NAME``), from any process of the workspace."""
    from shoal.jobs.job import MLJob

    return MLJob(job_id)


def list_jobs(
    limit: int = 10, database: str | None = None, schema: str | None = None, session: Any = None
) -> Any:
    """The newest ``limit`` jobs (all with 0 or less) as a pandas DataFrame with the reference
    product's columns, newest first."""
    from shoal.jobs.listing import as_frame, job_summaries

    return as_frame(job_summaries(limit))


def delete_job(job: str | MLJob[Any], session: Any = None) -> None:
    """Delete a finished job: its folder on the stage and its record. Cancel a running job first."""
    from shoal.errors import ConfigError, RecordError
    from shoal.jobs import records
    from shoal.jobs.job import MLJob
    from shoal.jobs.status import JobStatus

    handle = job if isinstance(job, MLJob) else MLJob(job)
    try:
        status = handle.status
    except RecordError:  # its status cannot be read: ask its pool whether it still runs
        status = handle._check_alive(JobStatus.RUNNING)
    if not status.is_terminal:
        raise ConfigError(
            f"Job {handle.id} is {status.value}; cancel it (job.cancel()) and wait before deleting it."
        )
    record = records.load(handle.id)
    from shoal.stages import Stage

    Stage(record.stage_name, record.stage_url).remove(record.job_dir, missing_ok=True)
    records.delete(record.name)

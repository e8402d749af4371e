"""``snowflake.ml.jobs`` on shoal: the same functions, with compute pools created on first use
(:mod:`shoal.compat.snowflake.names`) and ``submit_from_stage``.

Runs on the driver.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal import jobs as _jobs
from shoal.compat.snowflake.names import ensure_pool
from shoal.jobs import (
    JOB_STATUS,
    JobStatus,
    MLJob,
    MLJobDefinition,
    delete_job,
    get_job,
    list_jobs,
)

__all__ = [
    "JOB_STATUS",
    "JobStatus",
    "MLJob",
    "MLJobDefinition",
    "delete_job",
    "get_job",
    "list_jobs",
    "remote",
    "submit_directory",
    "submit_file",
    "submit_from_stage",
]


def remote(
    compute_pool: str, *, stage_name: str, target_instances: int = 1, **kwargs: Any
) -> Callable[..., Any]:
    """``@remote(pool, stage_name=..., ...)``; the pool is created locally if it does not exist."""
    return _jobs.remote(
        ensure_pool(compute_pool, target_instances),
        stage_name=stage_name,
        target_instances=target_instances,
        **kwargs,
    )


def submit_file(
    file_path: str, compute_pool: str, *, stage_name: str, target_instances: int = 1, **kwargs: Any
) -> MLJob[Any]:
    return _jobs.submit_file(
        file_path,
        ensure_pool(compute_pool, target_instances),
        stage_name=stage_name,
        target_instances=target_instances,
        **kwargs,
    )


def submit_directory(
    dir_path: str,
    compute_pool: str,
    *,
    entrypoint: str | list[str],
    stage_name: str,
    target_instances: int = 1,
    **kwargs: Any,
) -> MLJob[Any]:
    return _jobs.submit_directory(
        dir_path,
        ensure_pool(compute_pool, target_instances),
        entrypoint=entrypoint,
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
    target_instances: int = 1,
    **kwargs: Any,
) -> MLJob[Any]:
    return _jobs.submit_from_stage(
        source,
        ensure_pool(compute_pool, target_instances),
        entrypoint=entrypoint,
        stage_name=stage_name,
        target_instances=target_instances,
        **kwargs,
    )

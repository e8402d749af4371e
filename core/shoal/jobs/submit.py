"""Submit a multi-node job: validate, upload the payload, scale the pool, queue it on the pool's service.

Every argument is checked before anything is uploaded or started. If submission fails after
the upload began, the job's folder on the stage and its index entry are removed again, so a
failed submit leaves nothing behind. Waiting for nodes shows progress (nodes ready / needed).

Runs on the driver.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
import secrets
import time
from collections.abc import Sequence
from typing import Any

from shoal.data.job_session import SESSION_VAR
from shoal.data.job_session import describe as describe_session
from shoal.errors import ConfigError, StageNotFoundError
from shoal.jobs import records
from shoal.jobs.job import MLJob
from shoal.jobs.payload import Payload, add_imports
from shoal.jobs.spec import JobSpec, LaunchSpec
from shoal.jobs.status import JobStatus, write_status
from shoal.plugin_manager import get_plugin_manager
from shoal.plugin_reach import check_plugins_reach_nodes
from shoal.pools import records as pool_records
from shoal.pools.api import get_backend
from shoal.pools.connect import connect
from shoal.stages import Stage, create_stage, get_stage
from shoal.stages.catalog import CALLER_STAGES_VAR, catalog_for_jobs
from shoal.stages.names import IDENTIFIER_RE
from shoal.stages.reach import check_stage_reaches_nodes

log = logging.getLogger(__name__)

DEFAULT_INSTANCES_TIMEOUT_S = 720.0
IGNORED_OPTIONS = {
    "session",  # the job's session (shoal.data.job_session); a session *argument* reaches the job live
    "external_access_integrations",
    "query_warehouse",
    "runtime_environment",
    "enable_metrics",
    "comment",
    "spec_overrides",
    "artifact_repositories",
    "database",
    "schema",
}


def _instances_timeout(instances_timeout: float | None) -> float:
    """Seconds to wait for nodes: ``instances_timeout``, else ``SHOAL_INSTANCES_TIMEOUT``, else 720."""
    timeout: Any = instances_timeout
    where = "instances_timeout"
    if timeout is None:
        timeout = os.environ.get("SHOAL_INSTANCES_TIMEOUT", DEFAULT_INSTANCES_TIMEOUT_S)
        where = "SHOAL_INSTANCES_TIMEOUT"
    try:
        seconds = float(timeout)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be a number of seconds, got {timeout!r}") from None
    if not seconds > 0:  # also refuses NaN
        raise ConfigError(f"{where} must be a positive number of seconds, got {timeout!r}")
    return seconds


def _check_instances(target_instances: object, min_instances: object, max_nodes: int) -> tuple[int, int]:
    if not isinstance(target_instances, int) or isinstance(target_instances, bool) or target_instances < 1:
        raise ConfigError(f"target_instances must be a positive integer, got {target_instances!r}")
    minimum = target_instances if min_instances is None else min_instances
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 1:
        raise ConfigError(f"min_instances must be a positive integer, got {min_instances!r}")
    if minimum > target_instances:
        raise ConfigError(f"min_instances ({minimum}) must not exceed target_instances ({target_instances})")
    if minimum > max_nodes:
        raise ConfigError(
            f"min_instances ({minimum}) exceeds the max_nodes ({max_nodes}) of the compute pool: the job "
            f"could never start. Lower min_instances or create a pool with max_nodes >= {minimum}."
        )
    return target_instances, minimum


#: The longest job name stem (a unique suffix is added to it).
MAX_JOB_NAME = 201


def _job_base_name(name: str | None, fallback: str) -> str:
    """The job name's stem (a unique suffix is added): ``name`` as given, refused unless it is an
    identifier (it names the job's folder on the stage); else the payload's file or function
    name made into one."""
    if name is not None:
        if not isinstance(name, str):
            raise ConfigError(f"name must be a string, got {type(name).__name__}")
        base = name.split(".")[-1]  # DB.SCHEMA.NAME, as in the reference product
        if not IDENTIFIER_RE.fullmatch(base) or len(base) > MAX_JOB_NAME:
            raise ConfigError(
                f"job name {name!r} is not an identifier: use letters, digits, '_' and '$', starting "
                f"with a letter or '_' (e.g. 'train_stores'); it names the job's folder on the stage"
            )
        return base
    return identifier_name(fallback)


def identifier_name(text: str) -> str:
    """``text`` made into a valid job name: every other character becomes '_'. For names shoal
    makes itself (from a payload's file, or a DPF run id)."""
    base = re.sub(r"[^A-Za-z0-9_$]", "_", text or "job")[:200]
    return base if re.match(r"^[A-Za-z_]", base) else f"job_{base}"[:200]


def _check_requirements(requirements: Sequence[str] | None) -> list[str]:
    """``pip_requirements`` as a list of requirement strings; TypeError before anything is uploaded."""
    if requirements is None:
        return []
    items = list(requirements) if not isinstance(requirements, str) else None
    if items is None or not all(isinstance(r, str) and r.strip() for r in items):
        raise TypeError(
            f"pip_requirements must be a list of requirement strings such as ['tinydb==4.8.2'], "
            f"got {requirements!r}"
        )
    return [r.strip() for r in items]


def _stage_for(stage_name: str) -> Stage:
    try:
        return get_stage(stage_name)
    except StageNotFoundError:
        return create_stage(stage_name, exist_ok=True)


def _progress(ready: int, needed: int) -> None:
    """Scale-up progress of the pool's nodes, logged (the CLI shows it on stderr)."""
    log.info("nodes ready %d/%d", ready, needed)


def submit_payload(
    payload: Payload,
    compute_pool: str,
    *,
    stage_name: str,
    target_instances: int = 1,
    min_instances: int | None = None,
    env_vars: dict[str, str] | None = None,
    imports: Sequence[Any] | None = None,
    name: str | None = None,
    instances_timeout: float | None = None,
    num_instances: int | None = None,
    pip_requirements: Sequence[str] | None = None,
    **kwargs: Any,
) -> MLJob[Any]:
    """Submit ``payload`` as a job on ``compute_pool``; return its :class:`MLJob` at once."""
    if num_instances is not None:  # the reference product's deprecated alias
        target_instances = num_instances
    unknown = sorted(set(kwargs) - IGNORED_OPTIONS)
    if unknown:
        raise TypeError(f"Unknown job option(s): {', '.join(unknown)}")
    base = _job_base_name(name, payload.base_name)
    timeout = _instances_timeout(instances_timeout)
    pool = pool_records.load(compute_pool)
    target, minimum = _check_instances(target_instances, min_instances, pool.max_nodes)
    env = {str(k): str(v) for k, v in (env_vars or {}).items()}
    requirements = _check_requirements(pip_requirements)
    session_env = {SESSION_VAR: describe_session(kwargs.get("session")).to_env()}
    add_imports(payload, imports)
    check_plugins_reach_nodes(pool.name, payload.top_level_modules())
    backend = get_backend(pool.name)
    stage = _stage_for(stage_name)
    check_stage_reaches_nodes(stage, backend, pool.name)
    job_name = f"{base}_{secrets.token_hex(4)}"
    job_dir = job_name
    record = records.JobRecord(
        id=job_name,
        name=job_name,
        compute_pool=pool.name,
        stage_name=stage.name,
        stage_url=stage.url,
        job_dir=job_dir,
        target_instances=target,
        min_instances=minimum,
        created_time=time.time(),
        owner=getpass.getuser(),
        payload_kind=payload.kind,
    )
    try:
        payload.upload(stage, job_dir)
        write_status(
            stage,
            job_dir,
            JobStatus.PENDING,
            message="submitted",
            created_time=record.created_time,
            target_instances=target,
            min_instances=minimum,
            compute_pool=pool.name,
            # what was asked, for `shoal job status` and the web view: the variables' names only
            payload_kind=payload.kind,
            entrypoint=payload.entrypoint,
            args=list(payload.args),
            env_names=sorted(env),
        )
        records.save(record)
        backend.ensure_nodes(1, progress=None)
        ray = connect(backend.address())
        busy = int(
            sum(
                1 for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(backend.node_resource)
            )
            - ray.available_resources().get(backend.node_resource, 0)
        )
        backend.ensure_nodes(busy + target, progress=_progress)
        common: dict[str, Any] = {
            "job_id": record.id,
            "job_name": job_name,
            "job_dir": job_dir,
            "stage_name": stage.name,
            "stage_url": stage.url,
            "compute_pool": pool.name,
            "target_instances": target,
            "min_instances": minimum,
        }
        shared = bool(getattr(backend, "shares_filesystem", False))
        if not shared:  # the nodes' workspaces are their own: a @STAGE name means the caller's stage
            session_env[CALLER_STAGES_VAR] = catalog_for_jobs()
        spec = JobSpec(
            **common,
            created_time=record.created_time,
            node_resource=backend.node_resource,
            instances_timeout=timeout,
            env={**backend.connect_env(), **env, **session_env},
            launch=LaunchSpec(
                **common,
                kind=payload.kind,
                entrypoint=payload.entrypoint,
                args=list(payload.args),
                worker_env=session_env,
                user_env_names=sorted(env),
                shared_filesystem=shared,
                plugin_manifest=get_plugin_manager().manifest(),
                pip_requirements=requirements,
            ),
        )
        from shoal.executors import pool_service

        service = pool_service(ray, pool.name, backend.connect_env())
        ray.get(service.submit.remote(spec.to_json()), timeout=120)
    except BaseException:
        stage.remove(job_dir, missing_ok=True)
        records.delete(job_name)
        raise
    log.info(
        "job %s submitted to pool %s (%d instance(s)); files at @%s/%s",
        job_name,
        pool.name,
        target,
        stage.name,
        job_dir,
    )
    return MLJob(job_name)

"""Public compute-pool API: create, list, describe, stop and drop pools.

Every check (name, sizes, family, backend, options) runs before anything is written or
started. Runs on the driver; stopping a pool ends the driver's own Ray connection to it.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from shoal import hooks
from shoal.errors import ConfigError, RecordError
from shoal.pools import records
from shoal.pools.backend import ComputePoolBackend
from shoal.pools.families import DEFAULT_FAMILY, resolve_family
from shoal.pools.summaries import PoolDescription, PoolList

log = logging.getLogger(__name__)

#: how long a stopping pool waits for its service to end its jobs
ABANDON_TIMEOUT_S = 60


def get_backend(name: str) -> ComputePoolBackend:
    """The backend object of pool ``name`` (its kind chosen by the pool's ``backend``)."""
    record = records.load(name)
    backend = hooks.get_compute_pool_backend(record.backend).factory(record)
    assert isinstance(backend, ComputePoolBackend)
    return backend


def _check_count(label: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{label} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{label} must be at least {minimum}, got {value}")
    return value


def create_compute_pool(
    name: str,
    *,
    min_nodes: int = 1,
    max_nodes: int,
    instance_family: str = DEFAULT_FAMILY,
    backend: str = "local",
    exist_ok: bool = False,
    initially_suspended: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Create a compute pool and (unless ``initially_suspended``) start its first ``min_nodes`` nodes.

    ``backend="local"`` runs a Ray cluster on this machine; ``backend="ray"`` uses an existing
    Ray cluster (``address=...``). Backend options go in ``**options`` (see docs/pools.md).
    """
    _check_count("min_nodes", min_nodes, 1)
    _check_count("max_nodes", max_nodes, 1)
    if min_nodes > max_nodes:
        raise ConfigError(f"min_nodes ({min_nodes}) must not exceed max_nodes ({max_nodes})")
    resolve_family(instance_family, options)
    spec = hooks.get_compute_pool_backend(backend)
    record = records.new_record(
        name,
        backend=spec.name,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        instance_family=instance_family,
        options=options,
    )
    existing = None
    with contextlib.suppress(records.PoolNotFoundError):
        existing = records.load(record.name)
    if existing is not None:
        same = (
            existing.backend,
            existing.min_nodes,
            existing.max_nodes,
            existing.instance_family,
            existing.options,
        ) == (record.backend, record.min_nodes, record.max_nodes, record.instance_family, record.options)
        if not exist_ok or not same:
            raise records.PoolExistsError(
                f"Compute pool {record.name!r} exists already"
                + ("" if not exist_ok else " with other settings")
                + f". Drop it first with shoal.drop_compute_pool({record.name!r}) or choose another name."
            )
        return describe_compute_pool(record.name)
    instance = spec.factory(record)  # validates backend options before anything is written
    records.save(record)
    if not initially_suspended:
        try:
            _start_showing_progress(instance)
        except Exception:
            instance.stop()
            records.delete(record.name)
            raise
    return describe_compute_pool(record.name)


def _summary(record: records.PoolRecord, backend: ComputePoolBackend) -> dict[str, Any]:
    running = backend.is_running()
    nodes = backend.nodes() if running else []
    return {
        "name": record.name,
        "state": "ACTIVE" if running else "SUSPENDED",
        "backend": record.backend,
        "min_nodes": record.min_nodes,
        "max_nodes": record.max_nodes,
        "instance_family": record.instance_family,
        "active_nodes": len(nodes),
        "created_on": record.created_on,
    }


def list_compute_pools() -> PoolList:
    """Every pool as a dict: name, state, backend, min/max nodes, family, active nodes, created_on
    (a list, which shows itself as a table in a notebook)."""
    result = PoolList()
    for record in records.load_all():
        backend = hooks.get_compute_pool_backend(record.backend).factory(record)
        result.append(_summary(record, backend))
    return result


def describe_compute_pool(name: str) -> PoolDescription:
    """One pool in detail: the summary, its options, its nodes and backend facts (a dict, which
    shows itself in a notebook)."""
    backend = get_backend(name)
    record = backend.record
    info = PoolDescription(_summary(record, backend))
    info["options"] = dict(record.options)
    info["node_resource"] = backend.node_resource
    info["nodes"] = [
        {"index": n.index, "node_id": n.node_id, "address": n.address, "resources": n.resources}
        for n in (backend.nodes() if info["state"] == "ACTIVE" else [])
    ]
    info.update(backend.describe())
    return info


def dashboard_url(name: str) -> str | None:
    """The Ray dashboard of pool ``name`` as an ``http://`` URL. A running local pool created
    without ``include_dashboard=True`` gets one started on this first request (a few seconds;
    docs/pools.md); None for a pool that is not running or whose backend cannot start one."""
    url = describe_compute_pool(name).get("dashboard") or get_backend(name).start_dashboard()
    if not url:
        return None
    return str(url) if str(url).startswith("http") else f"http://{url}"


def start_compute_pool(name: str) -> dict[str, Any]:
    """Start a suspended pool (its ``min_nodes`` nodes)."""
    _start_showing_progress(get_backend(name))
    return describe_compute_pool(name)


def _start_showing_progress(backend: ComputePoolBackend) -> None:
    """Start the pool's first nodes, showing nodes ready of needed (:mod:`shoal.display.progress`).
    A backend whose ``start`` takes no ``progress`` (written before it could) just starts."""
    import inspect

    from shoal.display.progress import open_progress

    if "progress" not in inspect.signature(backend.start).parameters:
        backend.start()
        return
    with open_progress(f"Compute pool {backend.record.name}", unit="nodes") as bar:
        backend.start(progress=lambda ready, needed: bar.update(ready, needed, "nodes ready"))


def _disconnect_from(backend: ComputePoolBackend) -> None:
    """Leave the pool's cluster before stopping it, if this process is connected to it."""
    from shoal.pools.connect import connected_address

    current = connected_address()
    if current is not None and backend.is_running() and current == backend.address():
        import ray

        ray.shutdown()


def stop_compute_pool(name: str) -> None:
    """Stop every node of the pool; its definition stays (``start`` brings it back). Its jobs
    that have not ended are marked INTERNAL_ERROR first, with a message saying so (nobody
    cancelled them: the pool went from under them)."""
    backend = get_backend(name)
    _disconnect_from(backend)
    _end_jobs_of(backend, "stopped")
    backend.stop()


def _end_jobs_of(backend: ComputePoolBackend, how: str) -> None:
    """End every job of the pool that has not ended INTERNAL_ERROR, before the pool's processes
    go (a payload killed by the stop would otherwise look like its own failure, or like a cancel
    nobody asked for). Each job's lifecycle, in the pool's service, writes that status itself
    (it is the job's one writer, :mod:`shoal.jobs.status`); a job the service could not end (the
    service is gone or does not answer) is marked from here. Driver side."""
    from shoal.jobs import records as job_records
    from shoal.jobs.status import JobStatus, read_status, write_status
    from shoal.stages import Stage

    pool = backend.record.name
    unended: list[tuple[str, Stage, str]] = []
    for record, final in job_records.newest(None):
        if final is not None or record.compute_pool != pool:
            continue
        stage = Stage(record.stage_name, record.stage_url)
        try:
            if not read_status(stage, record.job_dir).status.is_terminal:
                unended.append((record.name, stage, record.job_dir))
        except Exception as exc:  # an unreadable job must not keep the pool from stopping
            log.warning("could not read the status of job %s: %s", record.name, exc)
    if not unended:
        return
    reason = f"compute pool {pool} was {how}"
    if backend.is_running():
        _abandon_through_service(backend, reason)
    for name, stage, job_dir in unended:
        try:
            status = read_status(stage, job_dir).status
        except Exception as exc:
            log.warning("could not read the status of job %s: %s", name, exc)
            continue
        if not status.is_terminal:
            write_status(
                stage,
                job_dir,
                JobStatus.INTERNAL_ERROR,
                message=f"{reason} while the job was {status.value}; submit it again",
            )


def _abandon_through_service(backend: ComputePoolBackend, reason: str) -> None:
    """Have the pool's service end its jobs (``PoolService.abandon_all``), then leave the
    cluster again. A service that is gone or does not answer is logged, not raised: the pool
    stops all the same."""
    from shoal.jobs.queue import service_name
    from shoal.pools.connect import NAMESPACE, connect

    try:
        ray = connect(backend.address())
        try:
            service = ray.get_actor(service_name(backend.record.name), namespace=NAMESPACE)
        except ValueError:
            return  # no service: nothing on the cluster drives a job
        ended = ray.get(service.abandon_all.remote(reason), timeout=ABANDON_TIMEOUT_S)
        log.info("compute pool %s: its service ended jobs %s", backend.record.name, ended)
    except Exception as exc:
        log.warning(
            "compute pool %s: its service could not end its jobs (%s: %s); they are marked from here",
            backend.record.name,
            type(exc).__name__,
            exc,
        )
    finally:
        _disconnect_from(backend)


def drop_compute_pool(name: str) -> None:
    """Stop the pool and forget it. A pool whose record cannot be read is dropped too: every
    backend is asked to stop what it runs under that name, then the folder is removed. A pool
    whose backend's own state cannot be read is forgotten with a warning that says how to find
    its processes."""
    try:
        backend = get_backend(name)
    except RecordError:
        _stop_unreadable(name)
        records.delete(name)
        return
    try:
        _disconnect_from(backend)
        _end_jobs_of(backend, "dropped")
        backend.stop()
    except RecordError as exc:  # the pool's own state is unreadable: forget the pool all the same
        log.warning("%s", exc)
    records.delete(backend.record.name)


def _stop_unreadable(name: str) -> None:
    """Best effort for :func:`drop_compute_pool`: the record is gone, so which backend ran the pool
    is unknown; each one stops whatever it keeps under the pool's name (its own state, not the record)."""
    canonical = records.canonical_pool_name(name)
    for kind, spec in hooks.compute_pool_backends().items():
        stand_in = records.PoolRecord(
            name=canonical, backend=kind, min_nodes=1, max_nodes=1, instance_family=DEFAULT_FAMILY
        )
        try:
            spec.factory(stand_in).stop()
        except Exception as exc:  # a backend that needs more than the name: nothing it can stop
            log.debug("backend %s could not stop pool %s: %s", kind, canonical, exc)

"""``snowflake.ml.runtime_cluster`` on shoal: the size of the pool the code runs on.

"The pool the code runs on" is the job's pool inside a job (``SHOAL_COMPUTE_POOL``), else the
default pool (:func:`shoal.pools.default.default_compute_pool`). ``scale_cluster(n)`` grows a
local pool to ``n`` nodes, or stops nodes that hold no job until ``n`` are left (waiting up to
:data:`RELEASE_WAIT_S` for nodes a job still holds, then saying which jobs keep them). A pool on an
existing Ray cluster (``backend="ray"``) cannot be scaled from here: the error says so.

Runs on the driver or inside a job's payload.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from shoal.errors import ConfigError

log = logging.getLogger(__name__)

#: how long a shrink waits for nodes that a job which just ended still holds
RELEASE_WAIT_S = 20.0


def _pool() -> str:
    from shoal.pools.default import default_compute_pool

    return os.environ.get("SHOAL_COMPUTE_POOL") or default_compute_pool()


def _backend() -> Any:
    from shoal.pools.api import get_backend

    return get_backend(_pool())


def scale_cluster(
    expected_cluster_size: int,
    *,
    notebook_name: str | None = None,
    is_async: bool = False,
    options: dict[str, Any] | None = None,
) -> bool:
    """Grow or shrink the pool to ``expected_cluster_size`` nodes; True when it has that many.

    ``is_async`` and ``options`` (``rollback_after_seconds``, ``block_until_min_cluster_size``)
    are accepted; scaling a local pool always completes before this returns."""
    from shoal.pools import records
    from shoal.pools.idle import idle_nodes

    if not isinstance(expected_cluster_size, int) or expected_cluster_size < 1:
        raise ValueError(f"expected_cluster_size must be a positive integer, got {expected_cluster_size!r}")
    backend = _backend()
    record = records.load(_pool())
    if expected_cluster_size > record.max_nodes:
        raise ValueError(
            f"expected_cluster_size ({expected_cluster_size}) exceeds the max_nodes ({record.max_nodes}) of "
            f"compute pool {record.name}; create the pool with a larger max_nodes (or set "
            f"SHOAL_COMPAT_POOL_NODES before the pool is first used)"
        )
    if not hasattr(backend, "stop_node"):
        raise ConfigError(
            f"compute pool {record.name} runs on an existing Ray cluster ({record.backend}); "
            f"scale that cluster itself (its autoscaler, or KubeRay)"
        )
    current = len(backend.nodes())
    if expected_cluster_size > current:
        return bool(backend.ensure_nodes(expected_cluster_size) >= expected_cluster_size)
    deadline = time.monotonic() + RELEASE_WAIT_S
    while True:
        left = len(backend.nodes())
        for node in sorted(idle_nodes(backend), key=lambda n: -n.index)[: left - expected_cluster_size]:
            backend.stop_node(node.index)
        left = len(backend.nodes())
        if left <= expected_cluster_size or time.monotonic() >= deadline:
            break
        time.sleep(0.5)  # a job that just ended may still hold its nodes for a moment
    if left != expected_cluster_size:
        log.warning(
            "compute pool %s keeps %d node(s), not %d: %s; scale again once they end",
            record.name,
            left,
            expected_cluster_size,
            _holders(record.name),
        )
    return left == expected_cluster_size


def _holders(pool: str) -> str:
    """Which unfinished jobs hold the nodes of ``pool``, for the reason a shrink fell short."""
    from shoal.jobs.listing import job_summaries
    from shoal.jobs.status import JobStatus

    unfinished = {status.value for status in JobStatus if not status.is_terminal}
    running = [s for s in job_summaries(0) if s.compute_pool == pool and s.status in unfinished]
    mine = os.environ.get("SHOAL_JOB_ID")
    if not running:
        return f"its other nodes were still held after {RELEASE_WAIT_S:.0f} s"
    names = ", ".join(f"{s.name} ({s.status}{', this job' if s.name == mine else ''})" for s in running[:10])
    return f"its other nodes run job(s) {names}"


def get_nodes() -> list[dict[str, Any]]:
    """The pool's nodes: ``[{"name", "cpus", "gpus"}]``."""
    pool = _pool()
    return [
        {
            "name": f"{pool}-{node.index}",
            "cpus": int(node.resources.get("CPU", 0)),
            "gpus": int(node.resources.get("GPU", 0)),
        }
        for node in _backend().nodes()
    ]


def get_cluster_size() -> int:
    return len(_backend().nodes())


def get_num_cpus_per_node() -> int:
    nodes = get_nodes()
    return min((n["cpus"] for n in nodes), default=0)


def get_available_cpu() -> int:
    return sum(n["cpus"] for n in get_nodes())


def get_available_gpu() -> int:
    return sum(n["gpus"] for n in get_nodes())


def get_ray_dashboard_url() -> str | None:
    """The Ray dashboard of the pool, when it was created with ``include_dashboard=True``."""
    from shoal.pools.api import dashboard_url

    return dashboard_url(_pool())

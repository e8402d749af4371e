"""A pool's nodes that no job holds, and stopping them (driver: the CLI, the web view, a job).

A node is held while a job's reservation takes its node resource (the pool's
``node_resource``); the head (node 0) is never idle here, nor the nodes of the job that asks
(``SHOAL_JOB_NODE_IDS``). Only a pool whose backend can stop a single node (a local pool) can
stop them; a pool on an existing Ray cluster is scaled by that cluster.
"""

from __future__ import annotations

import os
from typing import Any

from shoal.errors import ConfigError, PoolBusyError


def _jobs_waiting(pool: str) -> list[str]:
    """The jobs of ``pool`` that have not started running yet (PENDING)."""
    from shoal.jobs.listing import job_summaries

    return [s.name for s in job_summaries(0) if s.compute_pool == pool and s.status == "PENDING"]


def idle_nodes(backend: Any) -> list[Any]:
    """The nodes of ``backend``'s pool that no job holds (never the head, never the caller's own)."""
    from shoal.pools.connect import connect

    ray = connect(backend.address())
    mine = set(filter(None, os.environ.get("SHOAL_JOB_NODE_IDS", "").split(",")))
    resource = backend.node_resource
    free = {
        node["NodeID"]
        for node in ray.nodes()
        if node.get("Alive") and node.get("Resources", {}).get(resource)
    }
    available = ray._private.state.available_resources_per_node()
    idle = []
    for node in backend.nodes():
        if node.index == 0 or node.node_id in mine or node.node_id not in free:
            continue
        if available.get(node.node_id, {}).get(resource, 0) >= 1:
            idle.append(node)
    return idle


def stop_idle_nodes(name: str) -> list[int]:
    """Stop the nodes of pool ``name`` that hold no job now, highest index first, never below the
    pool's ``min_nodes``; return the indexes of the nodes stopped."""
    from shoal.pools.api import get_backend

    backend = get_backend(name)
    if not hasattr(backend, "stop_node"):
        raise ConfigError(
            f"compute pool {backend.record.name} runs on an existing Ray cluster ({backend.record.backend}); "
            f"its nodes are that cluster's to stop (its autoscaler, or KubeRay)"
        )
    if not backend.is_running():
        return []
    waiting = _jobs_waiting(backend.record.name)
    if waiting:  # a node started for them looks idle until their reservation lands
        raise PoolBusyError(
            f"compute pool {backend.record.name} has job(s) waiting for nodes ({', '.join(waiting[:5])}); "
            f"its idle nodes may be theirs: stop them once those jobs run"
        )
    alive = len(backend.nodes())
    stopped = []
    for node in sorted(idle_nodes(backend), key=lambda n: -n.index):
        if alive <= backend.record.min_nodes:
            break
        backend.stop_node(node.index)
        stopped.append(node.index)
        alive -= 1
    return stopped

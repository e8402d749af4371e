"""Keep a local compute pool ready and stop its idle nodes: ``python -m shoal.runtime.pool_janitor
<POOL>``.

Started once the pool's first nodes are up, at a lower CPU priority, in the pool's environment
(so stopping the pool stops it too). It starts the pool's service and a node agent (which starts
its warm payload interpreters) on every node as soon as the node is up, in the background: a
job submitted a few seconds after the pool started does not wait for them. Every few seconds it
looks at which nodes hold a job's reservation (placement-group bundles); a worker node that held
none for the pool's ``idle_timeout_s`` is stopped, never going below ``min_nodes`` and never
stopping the head (node 0).

Runs on the machine of the local pool, as a small background process.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from typing import Any


def busy_node_ids(ray: object) -> set[str]:
    """Node ids that hold a bundle of a live placement group."""
    from ray.util import placement_group_table

    busy: set[str] = set()
    for table in placement_group_table().values():
        if table.get("state") in ("CREATED", "PENDING", "RESCHEDULING"):
            busy.update(str(n) for n in table.get("bundles_to_node_id", {}).values())
    return busy


def prestart(ray: Any, backend: Any, node_ids: list[str]) -> set[str]:
    """Start the pool's service and the node agents of ``node_ids`` (each starts its warm payload
    interpreters in the background); return the node ids that have theirs (none when it failed:
    the next round tries again)."""
    from shoal.runtime.pool_service import get_or_create

    try:
        service = get_or_create(ray, backend.record.name, backend.connect_env())
        ray.get(service.agents_for.remote(node_ids), timeout=120)
    except Exception:  # a node going away meanwhile: the next round tries again
        traceback.print_exc()
        return set()
    return set(node_ids)


def main(pool_name: str) -> None:
    from shoal.pools.api import get_backend
    from shoal.pools.connect import connect

    backend = get_backend(pool_name)
    idle_timeout = float(backend.record.options.get("idle_timeout_s", 600))
    period = max(0.5, min(30.0, idle_timeout / 4))
    ray = connect(backend.address())
    idle_since: dict[str, float] = {}
    ready: set[str] = set()
    while backend.is_running():
        now = time.monotonic()
        busy = busy_node_ids(ray)
        nodes = backend.nodes()
        if {n.node_id for n in nodes} - ready:
            ready = prestart(ray, backend, [n.node_id for n in nodes])
        for node in nodes:
            if node.node_id in busy:
                idle_since.pop(node.node_id, None)
            else:
                idle_since.setdefault(node.node_id, now)
        removable = sorted((n for n in nodes if n.index != 0), key=lambda n: -n.index)
        alive = len(nodes)
        for node in removable:
            if alive <= backend.record.min_nodes:
                break
            if now - idle_since.get(node.node_id, now) >= idle_timeout:
                stop_node = getattr(backend, "stop_node", None)
                if stop_node is not None:
                    stop_node(node.index)
                    idle_since.pop(node.node_id, None)
                    alive -= 1
        time.sleep(period)


if __name__ == "__main__":
    os.nice(10)  # housekeeping: its start (importing Ray, connecting) yields to the pool's own work
    main(sys.argv[1])

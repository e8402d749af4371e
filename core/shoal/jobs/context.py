"""Where am I? Instance helpers for code running inside a job (payload or its Ray workers).

Runs inside a job: in the payload process (instance 0) and in Ray tasks and actors on any of
the job's nodes.
"""

from __future__ import annotations

import os


def job_node_ids() -> list[str]:
    """Ray node ids of the job's instances, instance 0 first (empty outside a job)."""
    raw = os.environ.get("SHOAL_JOB_NODE_IDS", "")
    return [node for node in raw.split(",") if node]


def instance_count() -> int:
    """How many instances (nodes) the job got; 1 outside a job."""
    return int(os.environ.get("SHOAL_INSTANCE_COUNT", "1"))


def instance_id() -> int:
    """This process's instance: 0 for the payload, the node's position for a Ray worker.

    Raises ``RuntimeError`` in a Ray worker on a node that is not one of the job's.
    """
    explicit = os.environ.get("SHOAL_INSTANCE_ID")
    if explicit is not None:
        return int(explicit)
    nodes = job_node_ids()
    if not nodes:
        return 0
    import ray

    here = str(ray.get_runtime_context().get_node_id())
    if here not in nodes:
        raise RuntimeError(
            f"This Ray worker runs on node {here}, which is not one of the job's nodes {nodes}"
        )
    return nodes.index(here)

"""Where am I? The job a process belongs to, its nodes and what they offer.

:class:`JobContext` answers, for DPF and for training alike: am I in a job (its payload process
or one of its Ray workers), am I its payload, which nodes did the job get, and with which CPUs
and GPUs (:meth:`JobContext.nodes`, asked of Ray). The instance helpers below it read the same
environment.

Runs inside a job: in the payload process (instance 0) and in Ray tasks and actors on any of
the job's nodes. Outside a job every answer says so (no job id, one instance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class JobNode:
    """One node of the job and what Ray says it offers."""

    node_id: str
    cpus: float
    gpus: float = 0.0
    address: str = "127.0.0.1"


@dataclass(frozen=True)
class JobContext:
    """The job of the calling process, from its environment (:meth:`current`)."""

    job_id: str | None
    node_ids: tuple[str, ...]
    instance: str | None  # SHOAL_INSTANCE_ID: "0" in the payload process

    @classmethod
    def current(cls) -> JobContext:
        return cls(
            job_id=os.environ.get("SHOAL_JOB_ID") or None,
            node_ids=tuple(job_node_ids()),
            instance=os.environ.get("SHOAL_INSTANCE_ID"),
        )

    @property
    def in_job(self) -> bool:
        """In any process of a job that knows its nodes: the payload or one of its Ray workers.
        Training then places its ranks on the job's nodes."""
        return self.job_id is not None and bool(self.node_ids)

    @property
    def in_payload(self) -> bool:
        """In the job's payload process (instance 0), where a DPF run's scheduler thread can live."""
        return self.job_id is not None and self.instance == "0"

    def nodes(self) -> list[JobNode]:
        """The job's nodes that are alive, instance 0 first, with their CPUs, GPUs and addresses;
        outside a job, the node this process runs on. Asks Ray (connected already)."""
        import ray

        ids = list(self.node_ids) or [str(ray.get_runtime_context().get_node_id())]
        alive = {node["NodeID"]: node for node in ray.nodes() if node.get("Alive")}
        found = []
        for node_id in ids:
            node = alive.get(node_id)
            if node is None:
                continue
            resources = node.get("Resources", {})
            found.append(
                JobNode(
                    node_id=node_id,
                    cpus=float(resources.get("CPU", 0)),
                    gpus=float(resources.get("GPU", 0)),
                    address=str(node.get("NodeManagerAddress", "127.0.0.1")),
                )
            )
        return found


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

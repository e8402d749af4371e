"""How many workers, where, with how many CPUs: resolved against the nodes a job has.

``-1`` means "use what the job has": one worker per node, every CPU of the smallest node.
Everything is checked here, before a worker starts, with an error that says what to change.

Runs on the driver (the process that calls ``fit`` / ``run``, inside the job).
"""

from __future__ import annotations

from dataclasses import dataclass

from shoal.errors import ConfigError
from shoal.jobs.context import JobNode


@dataclass(frozen=True)
class ScalingRequest:
    """What an estimator asks for (``-1`` / ``None``: decide from the nodes)."""

    num_workers: int = -1
    cpus_per_worker: float = -1
    gpus_per_worker: float = 0  # -1: one per worker when every node used has a GPU, else none
    workers_per_node: int | None = None
    num_nodes: int | None = None

    def __post_init__(self) -> None:
        if self.num_workers == 0 or self.num_workers < -1:
            raise ConfigError(f"num_workers must be a positive number or -1 (auto), got {self.num_workers}")
        if self.cpus_per_worker == 0 or self.cpus_per_worker < -1:
            raise ConfigError(
                f"the CPUs per worker must be a positive number or -1 (auto), got {self.cpus_per_worker}"
            )
        if self.gpus_per_worker < 0 and self.gpus_per_worker != -1:
            raise ConfigError(f"the GPUs per worker must be 0 or more (-1: auto), got {self.gpus_per_worker}")
        if self.workers_per_node is not None and self.workers_per_node < 1:
            raise ConfigError(f"workers per node must be 1 or more, got {self.workers_per_node}")
        if self.num_nodes is not None and self.num_nodes < 1:
            raise ConfigError(f"num_nodes must be 1 or more, got {self.num_nodes}")


@dataclass(frozen=True)
class WorkerPlan:
    """The resolved plan: the node of each rank, and each worker's resources."""

    nodes: tuple[JobNode, ...]
    workers_per_node: tuple[int, ...]
    cpus_per_worker: float
    gpus_per_worker: float

    @property
    def num_workers(self) -> int:
        return sum(self.workers_per_node)

    def rank_nodes(self) -> list[tuple[int, int, JobNode]]:
        """``(node_rank, local_rank, node)`` for every rank, ranks numbered node by node."""
        result: list[tuple[int, int, JobNode]] = []
        for node_rank, (node, count) in enumerate(zip(self.nodes, self.workers_per_node, strict=True)):
            result.extend((node_rank, local, node) for local in range(count))
        return result


def plan_workers(request: ScalingRequest, nodes: list[JobNode]) -> WorkerPlan:
    """Spread the request over ``nodes`` (in the job's order) or say why it does not fit."""
    if not nodes:
        raise ConfigError("the job has no nodes to train on")
    if request.num_nodes is not None:
        if request.num_nodes > len(nodes):
            raise ConfigError(
                f"num_nodes={request.num_nodes} but the job has {len(nodes)} node(s); submit the job "
                f"with target_instances={request.num_nodes} or lower num_nodes"
            )
        nodes = nodes[: request.num_nodes]
    if request.workers_per_node is not None:
        counts = [request.workers_per_node] * len(nodes)
    elif request.num_workers == -1:
        counts = [1] * len(nodes)
    else:
        base, extra = divmod(request.num_workers, len(nodes))
        counts = [base + (1 if i < extra else 0) for i in range(len(nodes))]
    used = [(node, count) for node, count in zip(nodes, counts, strict=True) if count]
    smallest = min(node.cpus / count for node, count in used)
    cpus = float(int(smallest)) if request.cpus_per_worker == -1 else float(request.cpus_per_worker)
    if cpus < 1 and request.cpus_per_worker == -1:
        cpus = smallest
    gpus = float(request.gpus_per_worker)
    if gpus == -1:
        gpus = 1.0 if all(node.gpus >= count for node, count in used) else 0.0
    for node, count in used:
        if cpus * count > node.cpus + 1e-9:
            raise ConfigError(
                f"{count} worker(s) x {cpus:g} CPU(s) do not fit on node {node.node_id[:8]}, which has "
                f"{node.cpus:g} CPU(s); lower the workers or the CPUs per worker (-1 takes what there is)"
            )
        if gpus * count > node.gpus + 1e-9:
            raise ConfigError(
                f"{count} worker(s) x {gpus:g} GPU(s) do not fit on node "
                f"{node.node_id[:8]}, which has {node.gpus:g} GPU(s); use a GPU pool or use_gpu=False"
            )
    return WorkerPlan(
        nodes=tuple(node for node, _ in used),
        workers_per_node=tuple(count for _, count in used),
        cpus_per_worker=cpus,
        gpus_per_worker=gpus,
    )

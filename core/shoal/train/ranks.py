"""Ranks of a training worker group, and the calling worker's own rank.

The core assigns ranks (node by node, in the job's node order), picks the coordinator (rank 0's
node address and a free port reserved there) and hands a :class:`RankInfo` to each worker.

:class:`WorkerSlot` is built on the driver; :class:`RankInfo` travels to the worker, where
:func:`current_rank` returns it while training runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shoal.wire import WireSpec


@dataclass(frozen=True)
class WorkerInfo(WireSpec):
    """What a started training worker tells the driver about itself (``TrainWorker.describe``)."""

    node_id: str
    address: str
    pid: int
    ports: tuple[int, ...]
    log_path: str


@dataclass(frozen=True)
class WorkerSlot(WireSpec):
    """Where one worker runs, as the driver sees it after the group started."""

    rank: int
    local_rank: int
    node_rank: int
    node_id: str
    address: str
    pid: int
    ports: tuple[int, ...]
    log_path: str


@dataclass(frozen=True)
class RankInfo(WireSpec):
    """Everything a worker needs to join its framework's rendezvous."""

    rank: int
    local_rank: int
    world_size: int
    local_world_size: int
    node_rank: int
    num_nodes: int
    node_id: str
    address: str
    master_addr: str
    master_port: int
    ports: tuple[int, ...]
    cpus: float
    gpus: float
    extra: dict[str, Any] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The torchrun-style environment variables for this rank."""
        return {
            "RANK": str(self.rank),
            "LOCAL_RANK": str(self.local_rank),
            "WORLD_SIZE": str(self.world_size),
            "LOCAL_WORLD_SIZE": str(self.local_world_size),
            "NODE_RANK": str(self.node_rank),
            "GROUP_RANK": str(self.node_rank),
            "MASTER_ADDR": self.master_addr,
            "MASTER_PORT": str(self.master_port),
        }


def rank_infos(slots: list[WorkerSlot], cpus: float, gpus: float) -> list[RankInfo]:
    """One :class:`RankInfo` per slot; the coordinator is rank 0's address and first port."""
    ordered = sorted(slots, key=lambda s: s.rank)
    master = ordered[0]
    per_node: dict[int, int] = {}
    for slot in ordered:
        per_node[slot.node_rank] = per_node.get(slot.node_rank, 0) + 1
    return [
        RankInfo(
            rank=slot.rank,
            local_rank=slot.local_rank,
            world_size=len(ordered),
            local_world_size=per_node[slot.node_rank],
            node_rank=slot.node_rank,
            num_nodes=len(per_node),
            node_id=slot.node_id,
            address=slot.address,
            master_addr=master.address,
            master_port=master.ports[0] if master.ports else 0,
            ports=slot.ports,
            cpus=cpus,
            gpus=gpus,
        )
        for slot in ordered
    ]


_current: dict[str, Any] = {"rank": None}


def set_current(rank: RankInfo | None) -> None:
    """Worker side: record this worker's rank while training runs (None afterwards)."""
    _current["rank"] = rank


def current_rank() -> RankInfo:
    """The calling training worker's rank; ``RuntimeError`` outside a training worker."""
    rank = _current["rank"]
    if rank is None:
        raise RuntimeError(
            "not inside a shoal training worker: this works only in code run by an estimator or "
            "PyTorchDistributor (for example inside train_func)"
        )
    return rank

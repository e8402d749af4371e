"""``shoal.stop_idle_nodes``: which nodes it stops, with a stand-in backend (no cluster)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from shoal.errors import ConfigError
from shoal.pools import idle


@dataclass
class Node:
    index: int
    node_id: str


@dataclass
class Record:
    name: str = "ELASTIC"
    backend: str = "local"
    min_nodes: int = 1


@dataclass
class LocalBackend:
    nodes_up: list[int]
    record: Record = field(default_factory=Record)
    stopped: list[int] = field(default_factory=list)

    def is_running(self) -> bool:
        return True

    def nodes(self) -> list[Node]:
        return [Node(i, f"id{i}") for i in self.nodes_up]

    def stop_node(self, index: int) -> None:
        self.stopped.append(index)
        self.nodes_up.remove(index)


def with_backend(
    monkeypatch: pytest.MonkeyPatch, backend: Any, idle_indexes: list[int], waiting: list[str] | None = None
) -> None:
    monkeypatch.setattr("shoal.pools.api.get_backend", lambda name: backend)
    monkeypatch.setattr(idle, "idle_nodes", lambda b: [n for n in b.nodes() if n.index in idle_indexes])
    monkeypatch.setattr(idle, "_jobs_waiting", lambda pool: list(waiting or []))


def test_idle_nodes_stop_highest_first_and_never_below_min_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend([0, 1, 2, 3], Record(min_nodes=2))
    with_backend(monkeypatch, backend, idle_indexes=[1, 2, 3])
    assert idle.stop_idle_nodes("elastic") == [3, 2]
    assert backend.nodes_up == [0, 1]


def test_nodes_that_hold_a_job_stay(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = LocalBackend([0, 1, 2])
    with_backend(monkeypatch, backend, idle_indexes=[1])
    assert idle.stop_idle_nodes("elastic") == [1]
    assert backend.nodes_up == [0, 2]


def test_a_pool_on_an_existing_ray_cluster_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class RayBackend:
        record = Record(name="EXISTING", backend="ray")

    with_backend(monkeypatch, RayBackend(), idle_indexes=[])
    with pytest.raises(ConfigError, match="runs on an existing Ray cluster"):
        idle.stop_idle_nodes("existing")


def test_nothing_stops_while_a_job_waits_for_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.errors import PoolBusyError

    backend = LocalBackend([0, 1])
    with_backend(monkeypatch, backend, idle_indexes=[1], waiting=["TRAIN_ABC"])
    with pytest.raises(PoolBusyError, match=r"job\(s\) waiting for nodes \(TRAIN_ABC\)"):
        idle.stop_idle_nodes("elastic")
    assert backend.stopped == []

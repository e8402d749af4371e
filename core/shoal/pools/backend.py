"""The contract between shoal and a kind of compute pool (``local``, ``ray``, or a plugin's).

A backend turns a :class:`~shoal.pools.records.PoolRecord` into Ray nodes: it starts (or
finds) the Ray cluster, brings the number of pool nodes up to what a job needs (never above
``max_nodes``), lists them, and stops them. Every pool node carries the custom resource
:attr:`ComputePoolBackend.node_resource` with capacity 1; a job reserves a node by putting one
placement-group bundle ``{node_resource: 1}`` on it, so a node serves one job at a time while
its CPUs stay free for the job's own Ray tasks.

Backends are contributed through the ``shoal_compute_pool_backends`` hook; ``factory(record)``
returns an instance. Runs on the driver (submitting process, CLI) and, for idle shutdown, in
the pool's own housekeeping.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.pools.records import PoolRecord

ProgressCallback = Callable[[int, int], None]  # (nodes ready, nodes needed)


@dataclass(frozen=True)
class PoolNode:
    """One alive node of a pool."""

    node_id: str
    index: int
    address: str
    resources: dict[str, float] = field(default_factory=dict)
    reserved: bool = False


def check_known_options(backend: str, options: Mapping[str, Any], known: set[str]) -> None:
    """Raise :class:`~shoal.errors.ConfigError` naming any option not in ``known``."""
    from shoal.errors import ConfigError

    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(
            f"Unknown option(s) for a {backend} compute pool: {', '.join(unknown)}. "
            f"Known options: {', '.join(sorted(known))}."
        )


def node_resource_name(pool_name: str) -> str:
    """The custom resource that marks (and reserves) the nodes of pool ``pool_name``."""
    return f"shoal_pool_{pool_name}"


class ComputePoolBackend(ABC):
    """Starts, scales, lists and stops the Ray nodes of one pool."""

    #: True when every node sees this machine's files (a local pool): job code is then shared
    #: through the file system instead of being shipped with Ray's runtime environment.
    shares_filesystem: bool = False

    def __init__(self, record: PoolRecord) -> None:
        self.record = record

    @property
    def node_resource(self) -> str:
        return str(self.record.options.get("node_resource") or node_resource_name(self.record.name))

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        """Raise :class:`~shoal.errors.ConfigError` for options this backend does not understand."""
        del options  # the default accepts every option

    @abstractmethod
    def start(self, progress: ProgressCallback | None = None) -> None:
        """Make sure the pool's cluster runs with at least ``min_nodes`` nodes (``progress``: told
        nodes ready / needed as they come up)."""

    @abstractmethod
    def address(self) -> str:
        """The Ray address (``host:port`` of the GCS) a process connects to."""

    def connect_env(self) -> dict[str, str]:
        """Environment variables a process needs to connect (auth mode, token path...)."""
        return {"RAY_ADDRESS": self.address()}

    @abstractmethod
    def ensure_nodes(
        self, count: int, progress: ProgressCallback | None = None, timeout_s: float = 300
    ) -> int:
        """Bring the pool up to ``count`` nodes (capped at ``max_nodes``); return how many are up."""

    @abstractmethod
    def nodes(self) -> list[PoolNode]:
        """The pool's alive nodes."""

    @abstractmethod
    def is_running(self) -> bool:
        """Whether the pool's cluster is up."""

    @abstractmethod
    def stop(self) -> None:
        """Stop every node this backend started; nothing of the pool keeps running."""

    def stop_idle_nodes(self, idle_s: float) -> int:
        """Stop nodes that served no job for ``idle_s`` seconds (never below ``min_nodes``)."""
        return 0

    def describe(self) -> dict[str, Any]:
        """Backend-specific facts for ``describe_compute_pool``."""
        return {}

    def node_processes(self) -> dict[int, list[int]] | None:
        """The ids of each alive node's root processes on this machine (a local node's raylet),
        by node index: the web view adds up their process trees' CPU and memory. None when the
        nodes are not processes of this machine (the default)."""
        return None

    def importable_on_nodes(self, modules: Sequence[str]) -> dict[str, bool] | None:
        """Whether the pool's nodes can import each top-level module of ``modules`` (driver);
        None when this backend cannot tell without starting work on the nodes (the default)."""
        del modules
        return None

    def start_dashboard(self) -> str | None:
        """Start Ray's dashboard for a running pool that has none and return its ``http://`` URL;
        None when this backend cannot (the default)."""
        return None

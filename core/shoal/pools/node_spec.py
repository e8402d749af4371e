"""What a local pool tells the launcher of one of its Ray nodes (``shoal.runtime.node_launcher``).

Built by the local pool backend (``shoal.plugins.local_pool``) on the driver; read by the node's
launcher process from its command line, on the wire (:mod:`shoal.wire`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from shoal.wire import WireSpec


@dataclass(frozen=True)
class NodeLaunchSpec(WireSpec):
    """One Ray node of a local pool: its role, folder and resources.

    A worker node's spec may leave ``gcs_address`` out: its launcher then does its imports and
    reads the address from its standard input, so worker nodes get ready while the head starts.
    ``system_config`` and ``include_dashboard`` concern the head only (every node runs Ray's
    dashboard agent, stood in for by ``shoal.runtime.agent_stand_in`` without the dashboard)."""

    head: bool
    temp_dir: str
    num_cpus: float
    num_gpus: float
    memory: int  # bytes
    object_store_memory: int  # bytes
    node_name: str
    resources: dict[str, float] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    include_dashboard: bool = False
    dashboard_port: int = 0
    system_config: dict[str, Any] = field(default_factory=dict)
    gcs_address: str | None = None

    def with_gcs_address(self, address: str) -> NodeLaunchSpec:
        return replace(self, gcs_address=address)


@dataclass(frozen=True)
class NodeStarted(WireSpec):
    """What a node's launcher answers once its Ray node is up: one JSON line on its standard
    output, read by the local pool backend on the driver."""

    gcs_address: str
    node_id: str
    session_dir: str
    logs_dir: str
    temp_dir: str
    #: Ray's processes of the node by kind (``raylet``, ``gcs_server``, ...)
    pids: dict[str, list[int]] = field(default_factory=dict)
    launcher_pid: int = 0
    launch_s: float = 0.0
    #: the head's dashboard, when it runs one
    webui_url: str | None = None

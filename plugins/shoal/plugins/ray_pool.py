"""Built-in plugin: the ``ray`` compute pool, nodes of an existing Ray cluster.

This is how a pool grows past one machine: start a Ray cluster on your machines (VMs,
Kubernetes through KubeRay), give each node meant for shoal the custom resource
``shoal_pool_<NAME>: 1`` (``ray start ... --resources='{"shoal_pool_GPU": 1}'``), and create
the pool with ``backend="ray", address="<head>:6379"``. Jobs reserve those nodes exactly as on
a local pool. When the cluster runs the Ray autoscaler, a job that needs more nodes asks it for
them (``ray.autoscaler.sdk.request_resources``); otherwise the job waits for nodes up to its
``instances_timeout``. shoal never stops a cluster it did not start: ``stop`` only withdraws its
scale-up request.

Runs on the driver.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from shoal.contributions import ComputePoolBackendSpec
from shoal.errors import ConfigError
from shoal.hookspecs import hookimpl
from shoal.pools.backend import ComputePoolBackend, PoolNode, ProgressCallback, check_known_options
from shoal.pools.connect import connect
from shoal.pools.records import PoolRecord

KNOWN_OPTIONS = {
    "address",
    "node_resource",
    "use_autoscaler",
    "shares_filesystem",
    "families",
    "cpus_per_node",
    "memory_gb_per_node",
}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


class RayClusterPoolBackend(ComputePoolBackend):
    """The nodes of an existing Ray cluster that carry the pool's node resource."""

    def __init__(self, record: PoolRecord) -> None:
        super().__init__(record)
        self.validate_options(record.options)
        self.shares_filesystem = bool(record.options.get("shares_filesystem", False))

    @classmethod
    def validate_options(cls, options: Mapping[str, Any]) -> None:
        check_known_options("ray", options, KNOWN_OPTIONS)
        address = options.get("address")
        if not isinstance(address, str) or ":" not in address:
            raise ConfigError(
                "A ray compute pool needs address='<host>:<port>' of the cluster's head (GCS), e.g. "
                "address='10.0.0.5:6379'."
            )

    @property
    def _host_port(self) -> tuple[str, int]:
        host, _, port = str(self.record.options["address"]).rpartition(":")
        return host, int(port)

    def address(self) -> str:
        return str(self.record.options["address"])

    def connect_env(self) -> dict[str, str]:
        env = {"RAY_ADDRESS": self.address()}
        if self._host_port[0] in LOOPBACK_HOSTS:
            env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        return env

    def _ray(self) -> Any:
        return connect(self.address(), loopback=self._host_port[0] in LOOPBACK_HOSTS)

    def is_running(self) -> bool:
        try:
            with socket.create_connection(self._host_port, timeout=2):
                return True
        except OSError:
            return False

    def start(self, progress: ProgressCallback | None = None) -> None:
        if not self.is_running():
            raise ConfigError(
                f"No Ray cluster answers at {self.address()} (compute pool {self.record.name})."
            )

    def nodes(self) -> list[PoolNode]:
        ray = self._ray()
        found = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(self.node_resource)]
        return [
            PoolNode(
                node_id=n["NodeID"],
                index=i,
                address=n.get("NodeManagerAddress", ""),
                resources={k: v for k, v in n.get("Resources", {}).items() if not k.startswith("node:")},
            )
            for i, n in enumerate(sorted(found, key=lambda n: n["NodeID"]))
        ]

    def ensure_nodes(
        self, count: int, progress: ProgressCallback | None = None, timeout_s: float = 300
    ) -> int:
        wanted = max(1, min(count, self.record.max_nodes))
        have = len(self.nodes())
        if have < wanted and self.record.options.get("use_autoscaler", True):
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=[{self.node_resource: 1}] * wanted)
            deadline = time.monotonic() + min(timeout_s, 30)
            while have < wanted and time.monotonic() < deadline:
                if progress:
                    progress(have, wanted)
                time.sleep(1)
                have = len(self.nodes())
        if progress:
            progress(have, wanted)
        return have

    def stop(self) -> None:
        if not self.is_running():
            return
        try:
            self._ray()
            from ray.autoscaler.sdk import request_resources

            request_resources(bundles=[])
        except Exception:
            pass

    def describe(self) -> dict[str, Any]:
        return {"address": self.address(), "shares_filesystem": self.shares_filesystem}


@hookimpl
def shoal_compute_pool_backends() -> Iterator[ComputePoolBackendSpec]:
    yield ComputePoolBackendSpec(
        name="ray", factory=RayClusterPoolBackend, description="nodes of an existing Ray cluster (by address)"
    )

"""Ray's side of a job's lifecycle: :class:`RayJobNodes` implements the
:class:`shoal.jobs.lifecycle.JobNodes` seam that :class:`shoal.jobs.lifecycle.JobLifecycle`
drives.

- Nodes are reserved with a placement group of one bundle ``{pool node resource: 1}`` per node
  and the STRICT_SPREAD strategy, so each bundle is a whole node of the pool. Waiting for it is a
  real wait on its ``ready()`` reference (no polling of the GCS).
- Each node's long-lived agent (:class:`shoal.runtime.node_agent.NodeAgent`, kept by the pool's
  service) serves the job; instance 0's agent runs the payload in its warm interpreter.

Runs on the pool's cluster, in the pool service actor (head node of the Ray cluster, zero CPUs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from shoal.jobs.lifecycle import JobLifecycle
from shoal.jobs.spec import JobSpec

#: Seconds a call to the agents may take before the job is given up (INTERNAL_ERROR).
AGENT_CALL_TIMEOUT_S = 120
PREPARE_TIMEOUT_S = 600


class RayJobNodes:
    """One job's placement group and node agents."""

    def __init__(self, spec: JobSpec, agents_for: Callable[[list[str]], list[Any]]) -> None:
        self.spec = spec
        self._agents_for = agents_for
        self._agents: list[Any] = []
        self._pg: Any = None
        self._ready: Any = None
        self._want = 0

    # -- reservation -----------------------------------------------------------------------

    def request(self, count: int) -> None:
        from ray.util.placement_group import placement_group

        self.withdraw()
        self._want = count
        self._pg = placement_group(
            [{self.spec.node_resource: 1}] * count,
            strategy="STRICT_SPREAD",
            name=f"shoal-job-{self.spec.job_name}",
        )
        self._ready = self._pg.ready()

    def wait_granted(self, timeout_s: float) -> list[str] | None:
        import ray
        from ray.util.placement_group import placement_group_table

        ready, _ = ray.wait([self._ready], timeout=timeout_s)
        if not ready:
            return None
        mapping = placement_group_table(self._pg)["bundles_to_node_id"]
        return [mapping[i] for i in range(self._want)]

    def withdraw(self) -> None:
        from ray.util.placement_group import remove_placement_group

        if self._pg is not None:
            with contextlib.suppress(Exception):  # already gone with its cluster
                remove_placement_group(self._pg)
        self._pg, self._ready = None, None

    def free_nodes(self) -> int:
        import ray

        return int(ray.available_resources().get(self.spec.node_resource, 0))

    def pool_nodes(self) -> int:
        import ray

        resource = self.spec.node_resource
        return sum(1 for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get(resource))

    # -- the agents --------------------------------------------------------------------------

    def begin(self, node_ids: list[str]) -> list[str]:
        import ray

        self._agents = self._agents_for(node_ids)
        spec = self.spec
        return list(
            ray.get(
                [
                    agent.begin.remote(index, spec.stage_name, spec.stage_url, spec.job_dir)
                    for index, agent in enumerate(self._agents)
                ],
                timeout=AGENT_CALL_TIMEOUT_S,
            )
        )

    def prepare_payload(self) -> str:
        import ray

        return str(ray.get(self._agents[0].prepare_payload.remote(), timeout=PREPARE_TIMEOUT_S))

    def run_payload(self, launch_json: str, env: dict[str, str]) -> int:
        import ray

        return int(ray.get(self._agents[0].run_payload.remote(launch_json, env)))

    def stop_payload(self) -> None:
        import ray

        ray.get(self._agents[0].terminate_payload.remote(), timeout=30)

    def finish_logs(self) -> None:
        import ray

        ray.get([agent.finish_logs.remote() for agent in self._agents], timeout=AGENT_CALL_TIMEOUT_S)

    def end(self) -> None:
        import ray

        agents, self._agents = self._agents, []
        try:
            if agents:
                ray.get([agent.cleanup.remote() for agent in agents], timeout=30)
        finally:
            self.withdraw()


def supervise(spec: JobSpec, agents_for: Callable[[list[str]], list[Any]]) -> JobLifecycle:
    """The lifecycle of ``spec`` on this Ray cluster."""
    return JobLifecycle(spec, RayJobNodes(spec, agents_for))

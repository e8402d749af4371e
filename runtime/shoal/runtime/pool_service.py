"""The pool service: one long-lived Ray actor per compute pool that queues the pool's jobs and
supervises the running ones.

Submitting a job is one call to it (no actor per job): the job joins the pool's FIFO queue
(:class:`shoal.jobs.queue.JobQueue`); the head of the queue reserves its nodes; each running job
is driven by a :class:`~shoal.runtime.job_supervisor.JobSupervisor` on a thread of the service.
The service keeps one :class:`~shoal.runtime.node_agent.NodeAgent` per node, started on first use,
each with a warm payload interpreter ready.
The service is detached (it outlives the client that created it) and pinned to the Ray head node,
which lives as long as the pool.

Runs on the pool's cluster, on the Ray head node, with zero CPUs.
"""

from __future__ import annotations

import threading
from typing import Any

from shoal.jobs.queue import JobQueue, service_name
from shoal.runtime.job_supervisor import JobSupervisor


class PoolService:
    """Ray actor body (threaded: submit, cancel and status calls run while jobs wait or run)."""

    def __init__(self, pool_name: str, connect_env: dict[str, str] | None = None) -> None:
        self.pool_name = pool_name
        self.connect_env = dict(connect_env or {})
        self.queue: JobQueue[JobSupervisor] = JobQueue()
        self._agents: dict[str, Any] = {}
        self._executors: dict[str, list[Any]] = {}
        self._agents_lock = threading.Lock()
        self._thread = threading.Thread(target=self.queue.run_forever, name="shoal-queue", daemon=True)
        self._thread.start()

    def submit(self, spec: dict[str, Any]) -> str:
        self.queue.submit(JobSupervisor(spec, self.agents_for), float(spec.get("created_time") or 0.0))
        return str(spec["job_name"])

    def agents_for(self, node_ids: list[str]) -> list[Any]:
        """The node agents of ``node_ids``, started on first use and kept (a dead one is replaced)."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from shoal.runtime.node_agent import NodeAgent

        with self._agents_lock:
            agents = []
            for node in node_ids:
                agent = self._agents.get(node)
                if agent is not None:
                    try:
                        ray.get(agent.node_id.remote(), timeout=10)
                    except Exception:
                        agent = None
                if agent is None:
                    agent_cls: Any = ray.remote(NodeAgent)
                    agent = agent_cls.options(
                        num_cpus=0,
                        max_concurrency=4,
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                    ).remote(self.connect_env)
                    self._agents[node] = agent
                agents.append(agent)
            return agents

    def executors_for(self, slots: list[str]) -> list[Any]:
        """One partition executor per slot (a node id per slot, repeated for several per node),
        kept warm between DPF runs; dead ones are replaced."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from shoal.runtime.partition_worker import PartitionExecutor

        with self._agents_lock:
            wanted: dict[str, int] = {}
            for node in slots:
                wanted[node] = wanted.get(node, 0) + 1
            result: dict[str, list[Any]] = {}
            for node, count in wanted.items():
                pool = self._executors.setdefault(node, [])
                alive = []
                for executor in pool:
                    try:
                        ray.get(executor.node_id.remote(), timeout=10)
                        alive.append(executor)
                    except Exception:
                        continue
                executor_cls: Any = ray.remote(PartitionExecutor)
                while len(alive) < count:
                    alive.append(
                        executor_cls.options(
                            num_cpus=0,
                            max_concurrency=1,
                            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                        ).remote()
                    )
                self._executors[node] = alive
                result[node] = list(alive[:count])
            return [result[node].pop(0) for node in slots]

    def warm_agents(self, node_ids: list[str]) -> int:
        """Start the agents (and their warm interpreters) of ``node_ids`` ahead of any job."""
        return len(self.agents_for(node_ids))

    def cancel(self, job_name: str) -> str | None:
        return self.queue.cancel(job_name)

    def knows(self, job_name: str) -> bool:
        return self.queue.knows(job_name)

    def queued(self) -> list[str]:
        return self.queue.names()

    def started_order(self) -> list[str]:
        return list(self.queue.started_order)


def get_or_create(ray: Any, pool_name: str, connect_env: dict[str, str] | None = None) -> Any:
    """The pool's service actor, created on first use (by whichever client submits first)."""
    cls: Any = ray.remote(PoolService)
    return cls.options(
        name=service_name(pool_name),
        namespace="shoal",
        lifetime="detached",
        get_if_exists=True,
        num_cpus=0,
        max_concurrency=64,
        max_restarts=0,
        resources={"node:__internal_head__": 0.001},
    ).remote(pool_name, connect_env)

"""The pool service: one long-lived Ray actor per compute pool that queues the pool's jobs and
supervises the running ones.

Submitting a job is one call to it (no actor per job): the job joins the pool's FIFO queue
(:class:`shoal.jobs.queue.JobQueue`); the head of the queue reserves its nodes; each running job
is driven by a :class:`~shoal.jobs.lifecycle.JobLifecycle` (with Ray behind its seam,
:class:`~shoal.runtime.job_supervisor.RayJobNodes`) on a thread of the service.
The service keeps one :class:`~shoal.runtime.node_agent.NodeAgent` per node, started on first use,
each with a warm payload interpreter ready.
The service is detached (it outlives the client that created it) and pinned to the Ray head node,
which lives as long as the pool.

Runs on the pool's cluster, on the Ray head node, with zero CPUs.
"""

from __future__ import annotations

import threading
from typing import Any

from shoal.jobs.lifecycle import JobLifecycle
from shoal.jobs.queue import JobQueue, service_name
from shoal.jobs.spec import JobSpec
from shoal.runtime.job_supervisor import supervise


class PoolService:
    """Ray actor body (threaded: submit, cancel and status calls run while jobs wait or run)."""

    def __init__(self, pool_name: str, connect_env: dict[str, str] | None = None) -> None:
        self.pool_name = pool_name
        self.connect_env = dict(connect_env or {})
        self.queue: JobQueue[JobLifecycle] = JobQueue()
        self._agents: dict[str, list[Any]] = {}
        self._executors: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.queue.run_forever, name="shoal-queue", daemon=True)
        self._thread.start()

    def submit(self, spec_json: str) -> str:
        """Queue the job of ``spec_json`` (a :class:`JobSpec` on the wire, :mod:`shoal.wire`)."""
        spec = JobSpec.from_json(spec_json)
        self.queue.submit(supervise(spec, self.agents_for), spec.created_time)
        return spec.job_name

    def agents_for(self, node_ids: list[str]) -> list[Any]:
        """The node agents of ``node_ids``, started on first use and kept (a dead one is replaced)."""
        from shoal.runtime.node_agent import NodeAgent

        return self._pinned(self._agents, NodeAgent, node_ids, max_concurrency=4, args=(self.connect_env,))

    def executors_for(self, slots: list[str]) -> list[Any]:
        """One partition executor per slot (a node id per slot, repeated for several per node),
        kept warm between DPF runs; dead ones are replaced."""
        from shoal.runtime.partition_worker import PartitionExecutor

        return self._pinned(self._executors, PartitionExecutor, slots, max_concurrency=1, args=())

    def _pinned(
        self,
        kept: dict[str, list[Any]],
        body: type,
        slots: list[str],
        *,
        max_concurrency: int,
        args: tuple[Any, ...],
    ) -> list[Any]:
        """As many live actors of ``body`` on each node as ``slots`` names it, from ``kept`` (the
        dead dropped, the missing started, zero CPUs, pinned to the node), in ``slots`` order."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self._lock:
            wanted: dict[str, int] = {}
            for node in slots:
                wanted[node] = wanted.get(node, 0) + 1
            actor_cls: Any = ray.remote(body)
            handed: dict[str, list[Any]] = {}
            for node, count in wanted.items():
                alive = _live(kept.get(node, []))
                while len(alive) < count:
                    alive.append(
                        actor_cls.options(
                            num_cpus=0,
                            max_concurrency=max_concurrency,
                            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                        ).remote(*args)
                    )
                kept[node] = alive
                handed[node] = alive[:count]
            return [handed[node].pop(0) for node in slots]

    def cancel(self, job_name: str) -> str | None:
        return self.queue.cancel(job_name)

    def abandon_all(self, reason: str) -> list[str]:
        """The pool stops: each of its jobs that has not ended writes INTERNAL_ERROR (saying
        ``reason``) and its payload is stopped. The names of those jobs."""
        return self.queue.abandon_all(reason)

    def knows(self, job_name: str) -> bool:
        return self.queue.knows(job_name)

    def started_order(self) -> list[str]:
        return list(self.queue.started_order)


def _live(actors: list[Any]) -> list[Any]:
    """The ones of ``actors`` that answer (one round trip for all of them)."""
    if not actors:
        return []
    import ray

    pings = [actor.node_id.remote() for actor in actors]
    ready, _ = ray.wait(pings, num_returns=len(pings), timeout=10)
    alive = []
    for actor, ping in zip(actors, pings, strict=True):
        if ping in ready:
            try:
                ray.get(ping)
                alive.append(actor)
            except ray.exceptions.RayError:
                continue
    return alive


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

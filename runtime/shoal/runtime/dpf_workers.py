"""The Ray worker group of a DPF run: the executor behind the engine's ``WorkerGroup`` seam.

Each batch is one Ray task (:func:`shoal.runtime.partition_worker.run_batch`, a streaming
generator) pinned to its slot's node. A slot takes up to :data:`PIPELINE_DEPTH` batches, so the
next batch is already queued at the node's raylet when one ends; Ray reuses its worker processes,
which keep what they loaded of the run (function, plugins, open files) between batches and
attempts.

When a batch's task fails with a Ray system error, the group finds out whether the node was lost
or only the worker process died: it watches the node in the GCS and sends a no-op probe task to
it. The node marked dead, or the probe failing, is a lost node (its slots are dropped, its
unfinished partitions run again elsewhere); the probe completing is a worker that died on a live
node (``INTERNAL_ERROR``). Until then the node gets no new batch.

Runs in the run's scheduler (the job's payload process).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from shoal.dpf.engine.controller import BatchEnded, BatchFailed, BatchLost, PartitionFinished, WorkerEvent
from shoal.dpf.engine.slots import plan_slots, worker_resources
from shoal.dpf.entities import ExecutionOptions
from shoal.dpf.specs import BatchSpec, RunSpec, TaskOutcome
from shoal.jobs.context import JobContext, JobNode
from shoal.runtime.partition_worker import read_running
from shoal.stages import Stage

log = logging.getLogger(__name__)

PIPELINE_DEPTH = 2
#: How often a suspected node is looked at, and how long before giving up on an answer.
SUSPECT_CHECK_S = 0.25
SUSPECT_DEADLINE_S = 120.0


@dataclass
class _Flight:
    slot: int
    batch_id: int
    generator: Any


@dataclass
class _Suspect:
    node_id: str
    since: float
    batches: list[tuple[int, str]] = field(default_factory=list)  # (batch_id, error detail)
    probe: Any = None


class RayWorkerGroup:
    """Slots on the job's nodes; batches as streaming Ray tasks with hard node affinity."""

    def __init__(self, spec: RunSpec, nodes: list[JobNode], options: ExecutionOptions) -> None:
        self.spec = spec
        self.options = options
        self.nodes = nodes
        self._slot_nodes: list[str] = []
        self._dead_nodes: set[str] = set()
        self._flights: dict[Any, _Flight] = {}
        self._per_slot: dict[int, int] = {}
        self._suspects: dict[str, _Suspect] = {}
        self._last_suspect_check = 0.0
        self._spec_ref: Any = None
        self._task: Any = None
        self._task_options: dict[str, Any] = {}
        self._probe: Any = None
        self._stage = Stage(spec.stage_name, spec.stage_url)

    # -- WorkerGroup -----------------------------------------------------------------------

    def start(self) -> None:
        import ray

        from shoal.runtime.partition_worker import probe, run_batch

        self._slot_nodes = plan_slots(self.nodes, self.options)
        self._per_slot = dict.fromkeys(range(len(self._slot_nodes)), 0)
        cpus, gpus = worker_resources(self.options)
        self._task = ray.remote(run_batch)
        self._task_options = {
            "num_returns": "streaming",
            "num_cpus": cpus,
            "num_gpus": gpus,
            "max_retries": 0,
            "name": "shoal-dpf-batch",
        }
        self._probe = ray.remote(probe)
        self._spec_ref = ray.put(self.spec.to_json())
        log.info(
            "DPF run %s: %d worker slot(s) on %d node(s)",
            self.spec.run_id,
            len(self._slot_nodes),
            len(set(self._slot_nodes)),
        )

    def slots(self) -> int:
        return sum(1 for node in self._slot_nodes if node not in self._dead_nodes)

    def free_slots(self) -> list[int]:
        free = []
        for depth in range(PIPELINE_DEPTH):  # fill every slot's first place before anyone's second
            for slot, node in enumerate(self._slot_nodes):
                if node in self._dead_nodes or node in self._suspects:
                    continue
                if self._per_slot[slot] <= depth:
                    free.append(slot)
        return free

    def submit(self, slot: int, batch: BatchSpec) -> None:
        generator = self._start_batch(slot, batch)
        self._flights[generator] = _Flight(slot, batch.batch_id, generator)
        self._per_slot[slot] += 1

    def _start_batch(self, slot: int, batch: BatchSpec) -> Any:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        node = self._slot_nodes[slot]
        return self._task.options(
            **self._task_options, scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)
        ).remote(self._spec_ref, batch.to_json())

    def _after_verdict(self, node_id: str, node_lost: bool) -> None:
        """A batch failed on ``node_id`` and the verdict is in (tasks need nothing more)."""

    def poll(self, timeout: float) -> list[WorkerEvent]:
        import ray

        events: list[WorkerEvent] = []
        self._check_suspects(events)
        if not self._flights:
            time.sleep(timeout if not events else 0)
            return events
        generators = list(self._flights)
        ready, _ = ray.wait(generators, num_returns=1, timeout=timeout, fetch_local=False)
        if ready:
            ready, _ = ray.wait(generators, num_returns=len(generators), timeout=0, fetch_local=False)
        for generator in ready:
            self._drain(self._flights[generator], events)
        return events

    def cancel_all(self) -> None:
        import ray

        for generator in list(self._flights):
            try:
                ray.cancel(generator, force=True)
            except Exception as exc:  # already finished, or its node is gone
                log.debug("cancel of a DPF batch failed: %s", exc)
        self._flights.clear()

    def shutdown(self) -> None:
        self._flights.clear()
        self._suspects.clear()

    # -- what came back --------------------------------------------------------------------

    def _drain(self, flight: _Flight, events: list[WorkerEvent]) -> None:
        """Take every item the batch has produced so far."""
        import ray

        while True:
            try:
                ref = next(flight.generator)
            except StopIteration:
                self._land(flight)
                events.append(BatchEnded(flight.batch_id))
                return
            try:
                outcomes = [TaskOutcome.from_dict(item) for item in json.loads(ray.get(ref))]
            except ray.exceptions.TaskCancelledError:
                self._land(flight)
                return
            except ray.exceptions.RayTaskError as exc:  # shoal's own code raised on the worker
                self._land(flight)
                events.append(BatchFailed(flight.batch_id, f"{type(exc.cause).__name__}: {exc.cause}"))
                return
            except ray.exceptions.RayError as exc:
                self._land(flight)
                self._suspect(self._slot_nodes[flight.slot], flight.batch_id, f"{type(exc).__name__}: {exc}")
                return
            events.extend(PartitionFinished(flight.batch_id, outcome) for outcome in outcomes)
            ready, _ = ray.wait([flight.generator], timeout=0, fetch_local=False)
            if not ready:
                return

    def _land(self, flight: _Flight) -> None:
        self._flights.pop(flight.generator, None)
        self._per_slot[flight.slot] -= 1

    # -- lost node or dead worker ----------------------------------------------------------

    def _suspect(self, node_id: str, batch_id: int, detail: str) -> None:
        first_line = detail.strip().splitlines()[0] if detail.strip() else detail
        log.warning(
            "DPF batch %d on node %s failed (%s); checking the node", batch_id, node_id[:8], first_line
        )
        suspect = self._suspects.setdefault(node_id, _Suspect(node_id, time.monotonic()))
        suspect.batches.append((batch_id, first_line))

    def _check_suspects(self, events: list[WorkerEvent]) -> None:
        if not self._suspects:
            return
        now = time.monotonic()
        if now - self._last_suspect_check < SUSPECT_CHECK_S:
            return
        self._last_suspect_check = now
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        for node_id, suspect in list(self._suspects.items()):
            verdict: bool | None = None  # True: node lost, False: worker died on a live node
            if node_id not in alive:
                verdict = True
            elif suspect.probe is None:
                suspect.probe = self._probe.options(
                    num_cpus=0,
                    max_retries=0,
                    name="shoal-dpf-probe",
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
                ).remote()
            else:
                ready, _ = ray.wait([suspect.probe], timeout=0)
                if ready:
                    try:
                        ray.get(ready[0])
                        verdict = False
                    except ray.exceptions.RayError:
                        verdict = True
            if verdict is None and now - suspect.since > SUSPECT_DEADLINE_S:
                verdict = True
            if verdict is None:
                continue
            del self._suspects[node_id]
            self._after_verdict(node_id, verdict)
            if verdict:
                self._dead_nodes.add(node_id)
                log.warning(
                    "DPF run %s: node %s was lost; its partitions run again elsewhere",
                    self.spec.run_id,
                    node_id[:8],
                )
            for batch_id, detail in suspect.batches:
                running = None if verdict else read_running(self._stage, self.spec.run_id, batch_id)
                events.append(BatchLost(batch_id, verdict, f"{detail} (node {node_id})", running))


class ExecutorWorkerGroup(RayWorkerGroup):
    """Slots served by the pool's long-lived partition executors (actors kept warm between runs by
    the pool service), instead of fresh Ray workers of this job: a run's first partition starts as
    soon as its batch is sent. The job's environment variables and payload folder go with every
    batch. Lost-node and dead-worker handling are the task group's; a dead executor is replaced."""

    def __init__(self, spec: RunSpec, nodes: list[JobNode], options: ExecutionOptions, service: Any):
        super().__init__(spec, nodes, options)
        self._service = service
        self._executors: list[Any] = []
        self._env_json = json.dumps(job_environment())

    def start(self) -> None:
        import ray

        super().start()
        self._executors = ray.get(self._service.executors_for.remote(self._slot_nodes), timeout=120)

    def _start_batch(self, slot: int, batch: BatchSpec) -> Any:
        return (
            self._executors[slot]
            .run_batch.options(num_returns="streaming", name="shoal-dpf-batch")
            .remote(self._spec_ref, batch.to_json(), self._env_json)
        )

    def _after_verdict(self, node_id: str, node_lost: bool) -> None:
        if node_lost:
            return  # its slots are dropped
        import ray

        live = [i for i, node in enumerate(self._slot_nodes) if node not in self._dead_nodes]
        fresh = ray.get(self._service.executors_for.remote([self._slot_nodes[i] for i in live]), timeout=120)
        for i, executor in zip(live, fresh, strict=True):
            self._executors[i] = executor


def _runtime_env() -> dict[str, Any]:
    """This job's Ray runtime env (empty when Ray cannot say)."""
    import ray

    try:
        return dict(json.loads(ray.get_runtime_context().get_runtime_env_string() or "{}"))
    except Exception:
        return {}


def job_environment() -> dict[str, Any]:
    """The environment variables and payload folder that this job's Ray workers get (its runtime
    env, and the user's variables, which :mod:`shoal.runtime.job_env` gives them), for executors
    that are not this job's workers. Handed to them over Ray calls, never written."""
    from shoal.runtime.job_env import variables_here

    variables = {
        str(k): str(v)
        for k, v in (_runtime_env().get("env_vars") or {}).items()
        if not str(k).startswith("__RAY_")  # Ray's own (the setup hook): for its workers only
    }
    variables.update(variables_here())
    path = variables.pop("PYTHONPATH", "").split(":", 1)[0] or None
    return {"vars": variables, "path": path}


def worker_group(spec: RunSpec, options: ExecutionOptions) -> RayWorkerGroup:
    """The pool's warm executors when the pool service is there, the job has no working_dir to
    ship and the workers need no GPUs (Ray gives GPUs to a task that asks for them, and sets
    ``CUDA_VISIBLE_DEVICES`` for it); else fresh Ray tasks of this job."""
    import ray

    from shoal.jobs.queue import service_name

    nodes = JobContext.current().nodes()
    pool = os.environ.get("SHOAL_COMPUTE_POOL")
    warm = (
        not _runtime_env().get("working_dir")
        and not options.num_gpus_per_worker  # GPUs are Ray resources of a task: fresh tasks get them
        and os.environ.get("SHOAL_DPF_WARM_EXECUTORS", "1") != "0"
    )
    if pool and warm:
        try:
            service = ray.get_actor(service_name(pool), namespace="shoal")
        except ValueError:
            service = None
        if service is not None:
            return ExecutorWorkerGroup(spec, nodes, options, service)
    return RayWorkerGroup(spec, nodes, options)

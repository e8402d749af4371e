"""A group of training workers placed on the job's nodes.

One placement group holds one bundle per rank; each bundle is pinned to its node with a label
selector on ``ray.io/node-id``, so ranks land exactly where the plan put them (several per node
when asked). Each worker reserves free ports on its node; the driver reads them back and builds
the ranks.

While training runs the driver watches every rank: a worker that raised, died (killed, out of
memory, node lost) or is still running ``hang_timeout_s`` after another rank finished ends the
run with a :class:`~shoal.errors.TrainingError` naming the rank, its node, its pid and its log
file; the other workers are then stopped. Nothing waits forever.

Runs on the driver (inside the job).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from typing import Any

import cloudpickle

from shoal.errors import TrainingError
from shoal.train.ranks import RankInfo, WorkerSlot
from shoal.train.scaling import WorkerPlan

DEFAULT_HANG_TIMEOUT_S = 120.0
PLACEMENT_TIMEOUT_S = 60.0


class WorkerGroup:
    """Start with :meth:`start`, train with :meth:`run`, always :meth:`shutdown`."""

    def __init__(self, plan: WorkerPlan, *, ports_per_worker: int = 1, name: str = "train") -> None:
        self.plan = plan
        self.ports_per_worker = max(ports_per_worker, 1)
        self.group_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.slots: list[WorkerSlot] = []
        self._actors: list[Any] = []
        self._pg: Any = None

    def start(self) -> list[WorkerSlot]:
        """Place the workers and read their nodes, addresses and ports."""
        import ray
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        from shoal.plugin_manager import get_plugin_manager
        from shoal.runtime.train_worker import TrainWorker

        ranks = self.plan.rank_nodes()
        resources = {"CPU": self.plan.cpus_per_worker, "GPU": self.plan.gpus_per_worker}
        bundle = {k: v for k, v in resources.items() if v > 0}
        self._pg = placement_group(
            [dict(bundle) for _ in ranks],
            strategy="PACK",
            name=self.group_id,
            bundle_label_selector=[{"ray.io/node-id": node.node_id} for _, _, node in ranks],
        )
        if not self._pg.wait(PLACEMENT_TIMEOUT_S):
            wanted = ", ".join(
                f"{count} x {bundle} on node {node.node_id[:8]}"
                for node, count in zip(self.plan.nodes, self.plan.workers_per_node, strict=True)
            )
            raise TrainingError(
                f"could not place the training workers ({wanted}) within {PLACEMENT_TIMEOUT_S:g} s: the "
                f"nodes' CPUs/GPUs are in use by other tasks; lower num_cpu_per_worker or num_workers"
            )
        manifest = cloudpickle.dumps(get_plugin_manager().manifest()).hex()
        remote_worker = ray.remote(TrainWorker)
        for index, _ in enumerate(ranks):
            self._actors.append(
                remote_worker.options(
                    num_cpus=self.plan.cpus_per_worker,
                    num_gpus=self.plan.gpus_per_worker or None,
                    max_restarts=0,
                    name=f"{self.group_id}-rank{index}",
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        placement_group=self._pg, placement_group_bundle_index=index
                    ),
                ).remote(self.group_id, index, manifest)
            )
        infos = ray.get([a.describe.remote(self.ports_per_worker) for a in self._actors], timeout=120)
        self.slots = [
            WorkerSlot(
                rank=index,
                local_rank=local_rank,
                node_rank=node_rank,
                node_id=info["node_id"],
                address=info["address"],
                pid=info["pid"],
                ports=tuple(info["ports"]),
                log_path=info["log_path"],
            )
            for index, ((node_rank, local_rank, _), info) in enumerate(zip(ranks, infos, strict=True))
        ]
        return self.slots

    def run(
        self,
        backend: Any,
        ranks: list[RankInfo],
        tasks: list[Any],
        setup: Any,
        *,
        hang_timeout_s: float = DEFAULT_HANG_TIMEOUT_S,
        timeout_s: float | None = None,
    ) -> list[Any]:
        """Train every rank; return their results by rank, or raise :class:`TrainingError`."""
        import ray

        backend_blob = cloudpickle.dumps(backend)
        setup_blob = cloudpickle.dumps(setup)
        refs = [
            actor.run.remote(backend_blob, cloudpickle.dumps(rank), cloudpickle.dumps(task), setup_blob)
            for actor, rank, task in zip(self._actors, ranks, tasks, strict=True)
        ]
        rank_of = {ref: index for index, ref in enumerate(refs)}
        results: dict[int, Any] = {}
        pending = list(refs)
        started = time.monotonic()
        first_done: float | None = None
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in ready:
                rank = rank_of[ref]
                try:
                    results[rank] = cloudpickle.loads(ray.get(ref))
                except Exception as exc:  # every failure becomes a TrainingError
                    raise self._failure(rank, exc, pending, rank_of) from _user_cause(exc)
                first_done = first_done or time.monotonic()
            now = time.monotonic()
            if pending and first_done is not None and now - first_done > hang_timeout_s:
                raise self._hung([rank_of[r] for r in pending], hang_timeout_s)
            if pending and timeout_s is not None and now - started > timeout_s:
                stuck = [rank_of[r] for r in pending]
                raise TrainingError(
                    f"training did not finish within {timeout_s:g} s; still running: "
                    + "; ".join(f"{self._where(r)}, {self._log(r)}" for r in stuck),
                    rank=stuck[0],
                    node_id=self.slots[stuck[0]].node_id,
                    log_path=self.slots[stuck[0]].log_path,
                )
        return [results[index] for index in range(len(refs))]

    def _where(self, rank: int) -> str:
        slot = self.slots[rank]
        return f"rank {rank} on node {slot.node_id[:8]} ({slot.address}, pid {slot.pid})"

    def _log(self, rank: int) -> str:
        return f"its output: {self.slots[rank].log_path} on node {self.slots[rank].node_id[:8]}"

    def _failure(
        self, rank: int, exc: Exception, pending: list[Any], rank_of: dict[Any, int]
    ) -> TrainingError:
        """The error for a failed rank; a rank that died is reported before peers that then broke."""
        import ray
        from ray.exceptions import RayActorError

        if not isinstance(exc, RayActorError) and pending:
            ready, _ = ray.wait(pending, num_returns=len(pending), timeout=2.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except RayActorError as died:
                    return self._failure(rank_of[ref], died, [], rank_of)
                except Exception:  # only a death changes the root cause
                    continue
        slot = self.slots[rank]
        if isinstance(exc, RayActorError):
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            reason = " ".join(lines[:3]) if lines else type(exc).__name__
            message = (
                f"training worker {self._where(rank)} died (killed, out of memory or its node was lost); "
                f"the other workers were stopped. {self._log(rank)}. Ray says: {reason}"
            )
        else:
            cause = _user_cause(exc)
            detail = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
            message = (
                f"training worker {self._where(rank)} failed: {detail}; {self._log(rank)}.\n\n"
                f"Remote traceback:\n{exc}"
            )
        return TrainingError(message, rank=rank, node_id=slot.node_id, log_path=slot.log_path)

    def _hung(self, ranks: list[int], timeout: float) -> TrainingError:
        slot = self.slots[ranks[0]]
        return TrainingError(
            f"training worker(s) did not finish within {timeout:g} s after another rank finished, "
            f"so they are taken as hung and stopped: "
            + "; ".join(f"{self._where(r)}, {self._log(r)}" for r in ranks),
            rank=ranks[0],
            node_id=slot.node_id,
            log_path=slot.log_path,
        )

    def shutdown(self) -> None:
        """Stop every worker and free the placement group (safe to call twice)."""
        import ray
        from ray.util.placement_group import remove_placement_group

        for actor in self._actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)
        self._actors = []
        if self._pg is not None:
            with contextlib.suppress(Exception):  # already removed
                remove_placement_group(self._pg)
            self._pg = None


def _user_cause(exc: BaseException) -> BaseException | None:
    """The user's own exception inside a Ray task error, if there is one."""
    from ray.exceptions import RayTaskError

    if isinstance(exc, RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BaseException):
            return cause
    return None

"""The Ray worker group of a training run: the executor behind ``shoal.train.control.TrainWorkerGroup``.

One placement group holds one bundle per rank; each bundle is pinned to its node with a label
selector on ``ray.io/node-id``, so ranks land exactly where the plan put them (several per node
when asked). Each worker (:class:`shoal.runtime.train_worker.TrainWorker`, a Ray actor that
serves two calls at once) reserves free ports on its node; the driver reads them back and builds
the ranks. A backend with a ``start_on_rank0`` (XGBoost's tracker) runs it in rank 0's worker
(:meth:`RayTrainWorkerGroup.start_on_rank0`) before any rank trains.

Each rank's task (its data shards and the fit options) goes to its actor as an ordinary Ray
argument, so object references inside it (a Ray Dataset shard's blocks) are tracked by Ray and
readable on the rank's node. While the ranks train, :meth:`RayTrainWorkerGroup.poll` reports the
ranks that finished or failed and asks each running worker, at most every
``PROGRESS_EVERY_S``, how much progress it made; :meth:`~RayTrainWorkerGroup.diagnose` asks a
worker for its log's last lines and where its training thread waits.

Runs on the training driver (inside the job).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Sequence
from typing import Any

import cloudpickle
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.placement_group import placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from shoal.errors import TrainingError
from shoal.train.control import RankEvent, RankFailed, RankFinished, RankProgressed
from shoal.train.ranks import RankInfo, WorkerInfo, WorkerSlot
from shoal.train.results import PickledResult
from shoal.train.scaling import WorkerPlan
from shoal.wire import encode_list

PLACEMENT_TIMEOUT_S = 60.0
PROGRESS_EVERY_S = 1.0
ANSWER_TIMEOUT_S = 5.0
#: how long rank 0 may take to start the framework's rendezvous (its framework import included)
START_TIMEOUT_S = 120.0


class RayTrainWorkerGroup:
    """Start with :meth:`start`, :meth:`launch` the ranks, :meth:`poll` until they end, always
    :meth:`shutdown`."""

    def __init__(
        self,
        plan: WorkerPlan,
        *,
        ports_per_worker: int = 1,
        name: str = "train",
        preload: Sequence[str] = (),
        preload_hidden: Sequence[str] = (),
    ) -> None:
        self.plan = plan
        self.preload = tuple(preload)  # modules each worker imports as soon as it starts
        self.preload_hidden = tuple(preload_hidden)  # packages hidden while it does
        self.ports_per_worker = max(ports_per_worker, 1)
        self.group_id = f"{name}-{uuid.uuid4().hex[:8]}"
        self.slots: list[WorkerSlot] = []
        self._actors: list[Any] = []
        self._pg: Any = None
        self._runs: dict[Any, int] = {}  # run ref -> rank, while the rank runs
        self._progress_asked_at = 0.0

    def start(self) -> list[WorkerSlot]:
        """Place the workers and read their nodes, addresses and ports."""
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
        manifest = get_plugin_manager().manifest().to_json()
        remote_worker = ray.remote(TrainWorker)
        for index, _ in enumerate(ranks):
            self._actors.append(
                remote_worker.options(
                    num_cpus=self.plan.cpus_per_worker,
                    num_gpus=self.plan.gpus_per_worker or None,
                    max_restarts=0,
                    max_concurrency=2,  # progress and diagnose are answered while run() trains
                    name=f"{self.group_id}-rank{index}",
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        placement_group=self._pg, placement_group_bundle_index=index
                    ),
                ).remote(self.group_id, index, manifest, self.preload, self.preload_hidden)
            )
        described = ray.get([a.describe.remote(self.ports_per_worker) for a in self._actors], timeout=120)
        infos = [WorkerInfo.from_json(text) for text in described]
        self.slots = [
            WorkerSlot(
                rank=index,
                local_rank=local_rank,
                node_rank=node_rank,
                node_id=info.node_id,
                address=info.address,
                pid=info.pid,
                ports=info.ports,
                log_path=info.log_path,
            )
            for index, ((node_rank, local_rank, _), info) in enumerate(zip(ranks, infos, strict=True))
        ]
        return self.slots

    def start_on_rank0(self, backend: Any, slots: Sequence[WorkerSlot], setup: Any) -> Any:
        """Run the backend's ``start_on_rank0`` in rank 0's worker (it keeps that backend object
        for its training); return the setup every rank gets."""
        blobs = (cloudpickle.dumps(backend), encode_list(slots), cloudpickle.dumps(setup))
        started = self._actors[0].start_on_rank0.remote(*blobs)
        try:
            return cloudpickle.loads(ray.get(started, timeout=START_TIMEOUT_S))
        except GetTimeoutError:
            raise _rank0_error(slots[0], f"did not start it within {START_TIMEOUT_S:g} s", "hung") from None
        except RayActorError as exc:
            raise _rank0_error(slots[0], f"died: {str(exc).strip().splitlines()[0]}", "died") from None
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            error = _rank0_error(slots[0], f"raised {cause!r}" if cause else str(exc), "failed")
            raise error from (cause if isinstance(cause, BaseException) else None)

    def launch(self, backend: Any, ranks: Sequence[RankInfo], tasks: Sequence[Any], setup: Any) -> None:
        # the backend and setup hold the caller's code (pickled by value where it must be); the task
        # is a Ray argument, so the object references in its shards travel as Ray tracks them
        backend_blob, setup_blob = cloudpickle.dumps(backend), cloudpickle.dumps(setup)
        self._runs = {
            actor.run.remote(backend_blob, rank.to_json(), task, setup_blob): index
            for index, (actor, rank, task) in enumerate(zip(self._actors, ranks, tasks, strict=True))
        }

    def poll(self, timeout: float) -> list[RankEvent]:
        events: list[RankEvent] = []
        if self._runs:
            ready, _ = ray.wait(list(self._runs), num_returns=1, timeout=timeout)
            if ready:  # and any other rank that ended by now
                ready, _ = ray.wait(list(self._runs), num_returns=len(self._runs), timeout=0)
            for ref in ready:
                events.append(self._ended(self._runs.pop(ref), ref))
        now = time.monotonic()
        if self._runs and now - self._progress_asked_at >= PROGRESS_EVERY_S:
            self._progress_asked_at = now
            events.extend(self._progress())
        return events

    def _ended(self, rank: int, ref: Any) -> RankEvent:
        try:  # unpickled where it is used (shoal.train.results): not here, if only passed on
            return RankFinished(rank, PickledResult(ray.get(ref)))
        except RayActorError as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            return RankFailed(rank, died=True, detail=" ".join(lines[:3]) if lines else type(exc).__name__)
        except RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            return RankFailed(
                rank, died=False, detail=str(exc), cause=cause if isinstance(cause, BaseException) else None
            )
        except Exception as exc:  # the result could not be read back
            return RankFailed(rank, died=False, detail=f"{type(exc).__name__}: {exc}", cause=exc)

    def _progress(self) -> list[RankEvent]:
        asked = {self._actors[rank].progress.remote(): rank for rank in self._runs.values()}
        ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=ANSWER_TIMEOUT_S)
        events: list[RankEvent] = []
        for ref in ready:
            with contextlib.suppress(Exception):  # a worker that died is reported by its run
                count, what = ray.get(ref)
                events.append(RankProgressed(asked[ref], int(count), str(what)))
        return events

    def diagnose(self, ranks: Sequence[int]) -> dict[int, str]:
        asked = {self._actors[rank].diagnose.remote(): rank for rank in ranks}
        found = {rank: "(its worker did not answer: it may be gone)" for rank in ranks}
        with contextlib.suppress(GetTimeoutError):
            ready, _ = ray.wait(list(asked), num_returns=len(asked), timeout=ANSWER_TIMEOUT_S)
            for ref in ready:
                with contextlib.suppress(Exception):
                    found[asked[ref]] = str(ray.get(ref))
        return found

    def shutdown(self) -> None:
        """Stop every worker and free the placement group (safe to call twice)."""
        for actor in self._actors:
            with contextlib.suppress(Exception):  # already gone
                ray.kill(actor, no_restart=True)
        self._actors = []
        self._runs = {}
        if self._pg is not None:
            with contextlib.suppress(Exception):  # already removed
                remove_placement_group(self._pg)
            self._pg = None


def _rank0_error(slot: WorkerSlot, what: str, kind: str) -> TrainingError:
    return TrainingError(
        f"rank 0 (node {slot.node_id[:8]}) was to start the framework's rendezvous and {what}; "
        f"its log: {slot.log_path}",
        rank=0,
        node_id=slot.node_id,
        log_path=slot.log_path,
        kind=kind,
    )

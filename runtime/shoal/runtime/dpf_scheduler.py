"""The DPF run scheduler: runs a run's partitions on the nodes of the job it lives in.

It creates partition workers (Ray actors pinned to the job's nodes, the head included unless
``use_head_node=False``), hands out one partition per idle worker, retries failed partitions
with exponential back-off up to ``max_retries``, marks a partition whose worker died
``INTERNAL_ERROR`` (not retried, like the reference), stops at the first failure with
``fail_fast``, and honours a cancel request (the ``_shoal/cancel`` file). Its view of the run
(status, heartbeat, every partition's record) is flushed to ``_shoal/progress.json`` at most
every half second, which is what ``DPFRun`` and ``restore_from`` read, and what a resumed run
starts from (DONE partitions are skipped).

Runs in the job's payload process on the head node (instance 0).
"""

from __future__ import annotations

import heapq
import time
import traceback
from collections import deque
from typing import Any

from shoal.dpf import layout
from shoal.dpf.entities import ExecutionOptions, PartitionRecord, PartitionStatus, RunStatus
from shoal.stages import Stage

FLUSH_EVERY_S = 0.5
CANCEL_CHECK_EVERY_S = 0.5


class Scheduler:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.stage = Stage(spec["stage_name"], spec["stage_url"])
        self.run_id = spec["run_id"]
        self.options = ExecutionOptions(**spec["execution_options"])
        inputs = layout.read_json(self.stage, layout.internal(self.run_id, "partitions.json"), [])
        self.files = {item["index"]: item["files"] for item in inputs}
        previous = layout.read_json(self.stage, layout.internal(self.run_id, "progress.json"), {}) or {}
        done = {
            p["partition_id"]: p
            for p in previous.get("partitions", {}).values()
            if p.get("status") == PartitionStatus.DONE.value
        }
        self.records: dict[int, PartitionRecord] = {}
        for item in inputs:
            if item["partition_id"] in done:
                self.records[item["index"]] = PartitionRecord.from_dict(done[item["partition_id"]])
            else:
                self.records[item["index"]] = PartitionRecord(item["partition_id"], item["index"])
        self.status = RunStatus.IN_PROGRESS
        self.message = ""
        self._dirty = True
        self._last_flush = 0.0
        self.started_at = time.time()

    # -- persistence -----------------------------------------------------------------------

    def flush(self, force: bool = False) -> None:
        now = time.time()
        quiet = not self._dirty or now - self._last_flush < FLUSH_EVERY_S
        if not force and quiet and now - self._last_flush < 5:  # a heartbeat at least every 5 s
            return
        layout.write_json(
            self.stage,
            layout.internal(self.run_id, "progress.json"),
            {
                "run_id": self.run_id,
                "status": self.status.value,
                "message": self.message,
                "heartbeat": now,
                "started_at": self.started_at,
                "job_id": self.spec.get("job_id"),
                "partitions": {str(i): r.to_dict() for i, r in self.records.items()},
            },
        )
        self._dirty = False
        self._last_flush = now

    def cancel_requested(self) -> bool:
        return self.stage.exists(layout.internal(self.run_id, "cancel"))

    # -- the run ---------------------------------------------------------------------------

    def run(self) -> RunStatus:
        from shoal import hooks
        from shoal.contributions import RunInfo

        info = RunInfo(
            run_id=self.run_id,
            stage_name=self.stage.name,
            mode=self.spec["mode"],
            num_partitions=len(self.records),
        )
        hooks.notify_before_run(info)
        session_host = self._start_session_host()
        try:
            self._run()
        except Exception as exc:
            self.status = RunStatus.FAILURE
            self.message = f"the scheduler failed: {type(exc).__name__}: {exc}"
            traceback.print_exc()
            hooks.notify_run_error(info, exc)
        finally:
            self._stop_session_host(session_host)
        self.flush(force=True)
        hooks.notify_after_run(info, self.status.value)
        return self.status

    def _start_session_host(self) -> Any:
        kind = self.spec.get("session_kind")
        if not kind:
            return None
        import ray

        from shoal.runtime.partition_worker import SessionHost

        host_cls: Any = ray.remote(SessionHost)
        return host_cls.options(
            name=self.spec["worker_spec"]["session_host"], namespace="shoal", num_cpus=0, max_concurrency=1
        ).remote(kind)

    def _stop_session_host(self, host: Any) -> None:
        if host is None:
            return
        import cloudpickle
        import ray

        try:
            journal = ray.get(host.journal.remote(), timeout=60)
            if journal:
                self.stage.write_bytes(
                    layout.internal(self.run_id, "session_journal.pkl"), cloudpickle.dumps(journal)
                )
            ray.get(host.close.remote(), timeout=60)
        finally:
            ray.kill(host)

    def _plan_workers(self) -> list[str]:
        """One node id per worker slot: the job's nodes, the head first unless excluded."""
        import ray

        from shoal.jobs.context import job_node_ids

        nodes = job_node_ids() or [str(ray.get_runtime_context().get_node_id())]
        if not self.options.use_head_node:
            if len(nodes) < 2:
                raise RuntimeError("use_head_node=False needs a job of at least 2 nodes; this one has 1")
            nodes = nodes[1:]
        cpus = self.options.num_cpus_per_worker
        if not cpus:
            return nodes
        node_cpus = {n["NodeID"]: n.get("Resources", {}).get("CPU", 1) for n in ray.nodes()}
        return [node for node in nodes for _ in range(max(1, int(node_cpus.get(node, 1) // cpus)))]

    def _make_worker(self, node: str) -> Any:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from shoal.runtime.partition_worker import PartitionWorker

        cpus = self.options.num_cpus_per_worker
        worker_cls: Any = ray.remote(PartitionWorker)
        return worker_cls.options(
            num_cpus=cpus if cpus is not None else 1,
            num_gpus=self.options.num_gpus_per_worker or 0,
            max_concurrency=1,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
        ).remote(self.spec["worker_spec"])

    def _run(self) -> None:
        import ray

        pending = deque(sorted(i for i, r in self.records.items() if r.status != PartitionStatus.DONE))
        for index in pending:
            self.records[index].status = PartitionStatus.PENDING
        retries: list[tuple[float, int]] = []
        slot_nodes = self._plan_workers() if pending else []
        workers = [self._make_worker(node) for node in slot_nodes]
        idle = list(range(len(workers)))
        in_flight: dict[Any, tuple[int, int]] = {}
        stopping = False
        last_cancel_check = 0.0
        while (pending or retries or in_flight) and not stopping:
            now = time.time()
            if now - last_cancel_check >= CANCEL_CHECK_EVERY_S:
                last_cancel_check = now
                if self.cancel_requested():
                    self.status = RunStatus.CANCELLED
                    self.message = "cancelled"
                    stopping = True
                    break
            while retries and retries[0][0] <= now:
                pending.append(heapq.heappop(retries)[1])
            while idle and pending:
                slot, index = idle.pop(), pending.popleft()
                record = self.records[index]
                record.status = PartitionStatus.RUNNING
                record.attempts += 1
                record.started_at = time.time()
                task = {
                    "partition_id": record.partition_id,
                    "attempt": record.attempts,
                    "files": self.files[index],
                }
                in_flight[workers[slot].run.remote(task)] = (slot, index)
                self._dirty = True
            if in_flight:
                ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.2)
            else:
                ready = []
                time.sleep(0.05)
            for ref in ready:
                slot, index = in_flight.pop(ref)
                record = self.records[index]
                record.ended_at = time.time()
                try:
                    outcome = ray.get(ref)
                except ray.exceptions.RayActorError as exc:
                    record.status = PartitionStatus.INTERNAL_ERROR
                    record.error = f"the worker died ({type(exc).__name__}); node lost or out of memory"
                    ray.kill(workers[slot])
                    workers[slot] = self._make_worker(slot_nodes[slot])
                    idle.append(slot)
                    self._dirty = True
                    if self.options.fail_fast:
                        stopping = True
                    continue
                idle.append(slot)
                record.node_id = outcome["node_id"]
                record.started_at = outcome["started_at"]
                record.ended_at = outcome["ended_at"]
                if outcome["status"] == "DONE":
                    record.status, record.error = PartitionStatus.DONE, None
                elif record.attempts <= self.options.max_retries and not self.options.fail_fast:
                    record.status, record.error = PartitionStatus.PENDING, outcome["error"]
                    delay = self.options.retry_backoff_s * (2 ** (record.attempts - 1))
                    heapq.heappush(retries, (time.time() + delay, index))
                else:
                    record.status, record.error = PartitionStatus.FAILED, outcome["error"]
                    if self.options.fail_fast:
                        stopping = True
                        self.message = f"fail_fast: partition {record.partition_id} failed"
                self._dirty = True
            self.flush()
        for _slot, index in in_flight.values():
            self.records[index].status = PartitionStatus.CANCELLED
        for record in self.records.values():
            if not record.status.is_final:
                record.status = PartitionStatus.CANCELLED
        for worker in workers:
            ray.kill(worker)
        statuses = [r.status for r in self.records.values()]
        if self.status == RunStatus.CANCELLED:
            return
        done = statuses.count(PartitionStatus.DONE)
        if done == len(statuses):
            self.status = RunStatus.SUCCESS
        elif done == 0:
            self.status = RunStatus.FAILURE
        else:
            self.status = RunStatus.PARTIAL_FAILURE


def run_scheduler(spec: dict[str, Any]) -> str:
    """Entry point of a run's job: schedule every partition; return the run's final status."""
    import ray

    ray.init(address="auto", ignore_reinit_error=True)
    return Scheduler(spec).run().value

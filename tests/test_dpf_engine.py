"""The DPF engine without Ray: the run state machine, its policies and the controller loop,
driven by a fake worker group and a fake clock. Every path: retry and back-off, fail_fast, cancel,
resume, node loss, a worker that died on a live node, a scheduler error, batching."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from shoal.dpf.engine.controller import (
    BatchEnded,
    BatchFailed,
    BatchLost,
    Controller,
    PartitionFinished,
    WorkerEvent,
)
from shoal.dpf.engine.policies import GiveUp, RetryPolicy, StopPolicy, WorkerLossPolicy
from shoal.dpf.engine.slots import plan_slots
from shoal.dpf.engine.state import MAX_BATCH, RunState
from shoal.dpf.entities import ExecutionOptions, PartitionRecord, PartitionStatus, RunStatus
from shoal.dpf.specs import BatchSpec, PartitionInput, RunSpec, TaskOutcome, TaskSpec
from shoal.errors import ConfigError
from shoal.jobs.context import JobNode


def inputs(n: int) -> list[PartitionInput]:
    return [PartitionInput(f"p{i}", i, (f"@s/in/{i}.parquet",)) for i in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


Behaviour = Callable[[TaskSpec], str]  # "DONE", "FAILED", "LOST", "DIED", "HANG"


@dataclass
class FakeGroup:
    """Slots that run a batch's tasks in one poll each, as ``behaviour`` says."""

    clock: Clock
    behaviour: Behaviour
    slot_count: int = 2
    depth: int = 2
    lost_slots: set[int] = field(default_factory=set)
    submitted: list[tuple[int, BatchSpec]] = field(default_factory=list)
    in_flight: dict[int, deque[BatchSpec]] = field(default_factory=dict)
    cancelled: bool = False
    started: bool = False
    shut_down: bool = False
    lose_slot_on_loss: bool = True

    def start(self) -> None:
        self.started = True
        self.in_flight = {s: deque() for s in range(self.slot_count)}

    def slots(self) -> int:
        return self.slot_count - len(self.lost_slots)

    def free_slots(self) -> list[int]:
        live = [s for s in range(self.slot_count) if s not in self.lost_slots]
        return [s for depth in range(self.depth) for s in live if len(self.in_flight[s]) <= depth]

    def submit(self, slot: int, batch: BatchSpec) -> None:
        self.submitted.append((slot, batch))
        self.in_flight[slot].append(batch)

    def poll(self, timeout: float) -> list[WorkerEvent]:
        self.clock.now += max(timeout, 0.01)
        events: list[WorkerEvent] = []
        for slot, queue in self.in_flight.items():
            if not queue:
                continue
            batch = queue.popleft()
            for task in batch.tasks:
                what = self.behaviour(task)
                if what in ("LOST", "DIED"):
                    events.append(BatchLost(batch.batch_id, what == "LOST", f"slot {slot}"))
                    if what == "LOST" and self.lose_slot_on_loss:
                        self.lost_slots.add(slot)
                        events.extend(BatchLost(b.batch_id, True, f"slot {slot}") for b in queue)
                        queue.clear()
                    break
                if what == "HANG":
                    queue.appendleft(batch)
                    break
                events.append(
                    PartitionFinished(
                        batch.batch_id,
                        TaskOutcome(
                            task.index,
                            task.attempt,
                            "DONE" if what == "DONE" else "FAILED",
                            None if what == "DONE" else f"ValueError: {task.partition_id}",
                            self.clock.now - 0.01,
                            self.clock.now,
                            f"node{slot}",
                        ),
                    )
                )
            else:
                events.append(BatchEnded(batch.batch_id))
        return events

    def cancel_all(self) -> None:
        self.cancelled = True
        for queue in self.in_flight.values():
            queue.clear()

    def shutdown(self) -> None:
        self.shut_down = True


@dataclass
class MemoryProgress:
    flushes: list[tuple[list[PartitionRecord], RunStatus, str]] = field(default_factory=list)
    last: float = 0.0

    def due(self, now: float, changed: bool) -> bool:
        return changed and now - self.last >= 0.5

    def flush(
        self,
        changed: list[PartitionRecord],
        status: RunStatus,
        message: str,
        counts: dict[str, int],
        now: float,
    ) -> None:
        self.last = now
        self.flushes.append(([PartitionRecord.from_dict(r.to_dict()) for r in changed], status, message))

    def final(self) -> dict[int, PartitionRecord]:
        seen: dict[int, PartitionRecord] = {}
        for records, _, _ in self.flushes:
            seen.update({r.index: r for r in records})
        return seen


def drive(
    n: int,
    behaviour: Behaviour,
    *,
    options: ExecutionOptions | None = None,
    previous: dict[int, PartitionRecord] | None = None,
    cancel_after: int | None = None,
    slots: int = 2,
) -> tuple[RunState, FakeGroup, MemoryProgress, RunStatus]:
    options = options or ExecutionOptions(retry_backoff_s=1.0)
    clock = Clock()
    state = RunState(
        inputs(n),
        previous,
        retry=RetryPolicy.from_options(options),
        loss=WorkerLossPolicy(),
        stop=StopPolicy(options.fail_fast),
    )
    group = FakeGroup(clock, behaviour, slot_count=slots)
    progress = MemoryProgress()
    polls = {"n": 0}

    def cancel_requested() -> bool:
        polls["n"] += 1
        return cancel_after is not None and polls["n"] > cancel_after

    status = Controller(state, group, progress, cancel_requested=cancel_requested, clock=clock).run()
    return state, group, progress, status


def statuses(state: RunState) -> dict[str, str]:
    return {r.partition_id: r.status.value for r in state.records.values()}


def test_every_partition_done_is_success_and_the_progress_log_saw_each_one() -> None:
    state, group, progress, status = drive(50, lambda t: "DONE")
    assert status == RunStatus.SUCCESS
    assert set(statuses(state).values()) == {"DONE"}
    assert group.started
    assert group.shut_down
    assert not group.cancelled
    final = progress.final()
    assert len(final) == 50
    assert all(r.status == PartitionStatus.DONE for r in final.values())
    assert progress.flushes[-1][1] == RunStatus.SUCCESS
    ran = sorted(t.index for _, b in group.submitted for t in b.tasks)
    assert ran == list(range(50)), "each partition handed out exactly once"


def test_a_failing_partition_is_retried_with_exponential_backoff_then_failed() -> None:
    attempts_at: dict[int, list[float]] = {}
    clock_box: list[Clock] = []

    def behaviour(task: TaskSpec) -> str:
        attempts_at.setdefault(task.index, []).append(clock_box[0].now if clock_box else 0)
        return "FAILED" if task.index == 3 else "DONE"

    options = ExecutionOptions(max_retries=2, retry_backoff_s=1.0)
    clock = Clock()
    clock_box.append(clock)
    state = RunState(inputs(6), retry=RetryPolicy.from_options(options))
    group = FakeGroup(clock, behaviour)
    status = Controller(state, group, MemoryProgress(), clock=clock).run()
    assert status == RunStatus.PARTIAL_FAILURE
    record = state.records[3]
    assert record.status == PartitionStatus.FAILED
    assert (record.attempts, record.failures) == (3, 3)
    assert record.error == "ValueError: p3"
    times = attempts_at[3]
    assert times[1] - times[0] >= 1.0 - 0.05, "first retry after retry_backoff_s"
    assert times[2] - times[1] >= 2.0 - 0.05, "second retry after twice that"


def test_retry_policy_decisions() -> None:
    policy = RetryPolicy(max_retries=1, backoff_s=2.0)
    record = PartitionRecord("p", 0, failures=1)
    assert policy.on_failure(record, "e").delay_s == 2.0  # type: ignore[union-attr]
    record.failures = 2
    assert policy.on_failure(record, "e").status == PartitionStatus.FAILED  # type: ignore[union-attr]
    fail_fast = RetryPolicy(max_retries=5, fail_fast=True).on_failure(
        PartitionRecord("p", 0, failures=1), "e"
    )
    assert fail_fast == GiveUp(PartitionStatus.FAILED, "e"), "fail_fast gives up at the first failure"


def test_a_permanent_failure_is_given_up_at_once_without_back_off() -> None:
    policy = RetryPolicy(max_retries=3, backoff_s=2.0)
    decision = policy.on_failure(PartitionRecord("p", 0, failures=1), "no model", retryable=False)
    assert decision.status == PartitionStatus.FAILED  # type: ignore[union-attr]
    state = RunState(inputs(1), retry=policy)
    (task,) = state.next_batch(1, 1000.0)
    outcome = TaskOutcome(
        task.index,
        task.attempt,
        "FAILED",
        "PermanentPartitionError: no model",
        1000.0,
        1000.1,
        retryable=False,
    )
    state.on_outcome(TaskOutcome.from_json(outcome.to_json()), 1000.1)  # as it crosses processes
    record = state.records[0]
    assert record.status == PartitionStatus.FAILED
    assert (record.attempts, record.failures) == (1, 1)
    assert state.next_retry_at() is None
    assert state.finish() == RunStatus.FAILURE


def test_fail_fast_stops_the_run_and_cancels_the_rest() -> None:
    options = ExecutionOptions(fail_fast=True)
    state, group, progress, status = drive(
        40, lambda t: "FAILED" if t.index == 0 else "DONE", options=options
    )
    assert status in (RunStatus.FAILURE, RunStatus.PARTIAL_FAILURE)
    counted = list(statuses(state).values())
    assert counted.count("FAILED") == 1
    assert counted.count("CANCELLED") >= 30
    assert group.cancelled, "batches in flight are stopped"
    assert state.message.startswith("fail_fast: partition p0")
    assert all(r.status.is_final for r in progress.final().values())


def test_cancel_keeps_finished_partitions_and_cancels_the_others() -> None:
    state, group, _, status = drive(200, lambda t: "DONE", cancel_after=3)
    assert status == RunStatus.CANCELLED
    counted = list(statuses(state).values())
    assert "DONE" in counted
    assert "CANCELLED" in counted
    assert set(counted) <= {"DONE", "CANCELLED"}
    assert group.cancelled


def test_resume_skips_done_partitions() -> None:
    previous = {
        i: PartitionRecord(f"p{i}", i, PartitionStatus.DONE, attempts=1, started_at=1.0, ended_at=2.0)
        for i in range(0, 10, 2)
    }
    previous[1] = PartitionRecord("p1", 1, PartitionStatus.FAILED, attempts=2, failures=2)
    state, group, _, status = drive(10, lambda t: "DONE", previous=previous)
    assert status == RunStatus.SUCCESS
    ran = sorted(t.index for _, b in group.submitted for t in b.tasks)
    assert ran == [1, 3, 5, 7, 9]
    assert state.records[4].ended_at == 2.0, "a DONE record is kept as it was"
    assert state.records[1].attempts == 1, "an unfinished partition starts again from attempt 1"


def test_a_lost_node_requeues_its_partitions_elsewhere_and_the_run_succeeds() -> None:
    lost_once: set[int] = set()

    def behaviour(task: TaskSpec) -> str:
        if task.index == 7 and 7 not in lost_once:
            lost_once.add(7)
            return "LOST"
        return "DONE"

    state, group, _, status = drive(30, behaviour, slots=3)
    assert status == RunStatus.SUCCESS
    record = state.records[7]
    assert record.status == PartitionStatus.DONE
    assert (record.attempts, record.lost, record.failures) == (2, 1, 0)
    assert len(group.lost_slots) == 1
    later = [
        slot for slot, batch in group.submitted if any(t.index == 7 and t.attempt == 2 for t in batch.tasks)
    ]
    assert later, "the partition ran again"
    assert later[0] not in group.lost_slots, "on a live slot"


def test_a_worker_that_died_on_a_live_node_is_internal_error_and_not_retried() -> None:
    options = ExecutionOptions(max_retries=3, retry_backoff_s=0.1)
    state, group, _, status = drive(8, lambda t: "DIED" if t.index == 2 else "DONE", options=options)
    assert status == RunStatus.PARTIAL_FAILURE
    record = state.records[2]
    assert record.status == PartitionStatus.INTERNAL_ERROR
    assert record.attempts == 1
    assert "the worker died while its node stayed up" in (record.error or "")
    assert not group.lost_slots


def test_a_dead_worker_gives_up_the_partition_it_was_running_and_reruns_the_rest() -> None:
    state = RunState(inputs(16), retry=RetryPolicy(max_retries=0))
    tasks = state.next_batch(slots=1, now=0.0)
    assert [t.index for t in tasks] == [0, 1, 2, 3]
    state.on_outcome(TaskOutcome(0, 1, "DONE", None, 0.0, 0.1), now=0.1)
    state.on_lost([1, 2, 3], node_lost=False, detail="WorkerCrashedError", now=0.2, running=2)
    assert state.records[2].status == PartitionStatus.INTERNAL_ERROR
    assert [state.records[i].status for i in (1, 3)] == [PartitionStatus.PENDING] * 2


def test_when_the_culprit_is_unknown_the_rest_run_one_per_batch_and_the_next_death_names_it() -> None:
    state = RunState(inputs(16), retry=RetryPolicy(max_retries=0))
    state.next_batch(slots=1, now=0.0)
    state.on_lost([0, 1, 2, 3], node_lost=False, detail="died", now=0.1)
    assert all(state.records[i].status == PartitionStatus.PENDING for i in range(4))
    assert [t.index for t in state.next_batch(slots=1, now=0.2)] == [0], "suspects run alone"
    state.on_lost([0], node_lost=False, detail="died again", now=0.3)
    assert state.records[0].status == PartitionStatus.INTERNAL_ERROR
    assert state.records[0].error == "the worker died while its node stayed up: died again"


def test_a_partition_that_keeps_losing_its_node_is_given_up() -> None:
    state, _, _, status = drive(3, lambda t: "LOST" if t.index == 0 else "DONE", slots=8)
    record = state.records[0]
    assert record.status == PartitionStatus.INTERNAL_ERROR
    assert record.lost == WorkerLossPolicy().max_node_losses
    assert "its node was lost 3 times" in (record.error or "")
    assert status == RunStatus.PARTIAL_FAILURE


def test_no_node_left_is_internal_error_with_every_partition_final() -> None:
    state, _, progress, status = drive(20, lambda t: "LOST", slots=2)
    assert status == RunStatus.INTERNAL_ERROR
    assert "no node of the job is left" in state.message
    assert all(r.status.is_final for r in state.records.values())
    assert progress.flushes[-1][1] == RunStatus.INTERNAL_ERROR


def test_an_error_of_the_worker_code_counts_as_a_failure_and_is_retried() -> None:
    clock = Clock()
    calls = {"n": 0}

    class BrokenOnce(FakeGroup):
        def poll(self, timeout: float) -> list[WorkerEvent]:
            calls["n"] += 1
            if calls["n"] == 1:
                batch = self.in_flight[0].popleft()
                return [BatchFailed(batch.batch_id, "ModuleNotFoundError: x")]
            return super().poll(timeout)

    state = RunState(inputs(4), retry=RetryPolicy(max_retries=1, backoff_s=0.1))
    status = Controller(state, BrokenOnce(clock, lambda t: "DONE"), MemoryProgress(), clock=clock).run()
    assert status == RunStatus.SUCCESS
    assert max(r.failures for r in state.records.values()) == 1


def test_a_scheduler_error_ends_internal_error_and_every_partition_final() -> None:
    clock = Clock()

    class Exploding(FakeGroup):
        def poll(self, timeout: float) -> list[WorkerEvent]:
            raise RuntimeError("boom")

    state = RunState(inputs(5))
    progress = MemoryProgress()
    group = Exploding(clock, lambda t: "DONE")
    status = Controller(state, group, progress, clock=clock).run()
    assert status == RunStatus.INTERNAL_ERROR
    assert "the scheduler failed (RuntimeError: boom); resume the run" in state.message
    assert {r.status for r in state.records.values()} == {PartitionStatus.INTERNAL_ERROR}
    assert group.shut_down
    assert progress.flushes[-1][1] == RunStatus.INTERNAL_ERROR


def test_stale_outcomes_are_ignored() -> None:
    state = RunState(inputs(2))
    [task] = state.next_batch(slots=4, now=1.0)[:1]
    state.on_lost([task.index], node_lost=True, detail="x", now=2.0)
    state.on_outcome(TaskOutcome(task.index, task.attempt, "DONE", None, 1.0, 2.0), now=3.0)
    assert state.records[task.index].status == PartitionStatus.PENDING


def test_batches_follow_what_is_left_and_shrink_for_the_tail() -> None:
    state = RunState(inputs(2000))
    first = state.next_batch(slots=3, now=0.0)
    assert len(first) == 4, "before any duration is known"
    for task in first:
        state.on_outcome(TaskOutcome(task.index, 1, "DONE", None, 0.0, 0.001), now=0.01)
    grown = state.batch_size(3)
    assert len(first) < grown <= MAX_BATCH, "millisecond partitions go out in larger batches, capped"
    assert grown * 3 * 2 <= state.queued + 3 * 2, "every slot still gets its two batches of what is queued"
    for _ in range(2000):  # each call hands out at least one partition
        if state.queued <= 10:
            break
        assert state.next_batch(slots=3, now=0.0), "a batch while partitions are queued"
    assert state.batch_size(3) == 1, "the tail goes out one partition at a time"
    slow = RunState(inputs(2000))
    for task in slow.next_batch(slots=3, now=0.0):
        slow.on_outcome(TaskOutcome(task.index, 1, "DONE", None, 0.0, 1.0), now=1.0)
    assert slow.batch_size(3) == 1, "one-second partitions are not batched"


def test_pipelining_keeps_two_batches_per_slot() -> None:
    _, group, _, _ = drive(400, lambda t: "HANG" if t.index == 0 else "DONE", cancel_after=2)
    first_wave = group.submitted[:4]
    assert [slot for slot, _ in first_wave] == [0, 1, 0, 1], "every slot's first place, then its second"


def test_plan_slots() -> None:
    nodes = [JobNode("head", 2), JobNode("a", 3), JobNode("b", 1, gpus=1)]
    assert plan_slots(nodes, ExecutionOptions()) == ["head", "head", "a", "a", "a", "b"]
    assert plan_slots(nodes, ExecutionOptions(use_head_node=False, num_cpus_per_worker=1.5)) == ["a", "a"]
    assert plan_slots(nodes, ExecutionOptions(num_cpus_per_worker=1, num_gpus_per_worker=1)) == ["b"]
    with pytest.raises(ConfigError, match="use_head_node=False needs a job of at least 2 nodes"):
        plan_slots(nodes[:1], ExecutionOptions(use_head_node=False))
    with pytest.raises(ConfigError, match="no node of the job can hold a partition worker"):
        plan_slots(nodes, ExecutionOptions(num_cpus_per_worker=4))


def test_specs_round_trip_as_json() -> None:
    spec = RunSpec("r", "S", "file:///x", "sql", ExecutionOptions(max_retries=3), "{}", job_id="j")
    assert RunSpec.from_json(spec.to_json()) == spec
    assert spec.execution_options.max_retries == 3
    batch = BatchSpec(7, (TaskSpec("p", 1, 2, ("@s/a",), (3, 1)),))
    assert BatchSpec.from_json(batch.to_json()) == batch
    item = PartitionInput("k", 0, ("@s/f",), 20, (0, 1))
    assert PartitionInput.from_dict(item.to_dict()) == item


def test_progress_log_appends_compacts_and_reads_incrementally(tmp_path: Path) -> None:
    from shoal.dpf import progress as progress_module
    from shoal.dpf.progress import ProgressReader, ProgressWriter
    from shoal.stages import Stage

    stage = Stage("T", tmp_path.as_uri())
    writer = ProgressWriter(stage, "run")
    reader = ProgressReader(stage, "run")
    records = {i: PartitionRecord(f"p{i}", i) for i in range(300)}
    now = 0.0
    for round_ in range(progress_module.MAX_EVENT_FILES + 20):
        now += 1.0
        index = round_ % 300
        records[index].attempts += 1
        records[index].status = PartitionStatus.DONE
        writer.flush([records[index]], RunStatus.IN_PROGRESS, "", {}, now=now)
        if round_ % 37 == 0:
            seen = reader.refresh(known_seq=reader.state()["seq"])
            assert seen[index].status == PartitionStatus.DONE
    events = stage.list("run/_shoal/progress/events")
    assert len(events) < progress_module.MAX_EVENT_FILES, "old events were compacted into the snapshot"
    assert stage.exists("run/_shoal/progress/snapshot.json")
    fresh = ProgressReader(stage, "run").refresh()
    assert {i: r.attempts for i, r in fresh.items()} == {
        i: r.attempts for i, r in records.items() if r.attempts
    }
    assert reader.refresh() == fresh
    (tmp_path / "run/_shoal/progress/snapshot.json").write_text("{not json")
    assert ProgressReader(stage, "run").refresh(strict=False) == {}
    with pytest.raises(ValueError, match="Expecting property name"):
        ProgressReader(stage, "run").refresh()


def test_a_stopped_driver_ends_cancelled_with_every_partition_final_and_says_resume() -> None:
    clock = Clock()

    class Stopped(FakeGroup):
        def poll(self, timeout: float) -> list[WorkerEvent]:
            raise SystemExit(15)  # the job's SIGTERM

    state = RunState(inputs(5))
    progress = MemoryProgress()
    with pytest.raises(SystemExit):
        Controller(state, Stopped(clock, lambda t: "DONE"), progress, clock=clock).run()
    assert state.status == RunStatus.CANCELLED
    assert "resume() continues the run" in state.message
    assert all(r.status.is_final for r in state.records.values())
    assert progress.flushes[-1][1] == RunStatus.CANCELLED

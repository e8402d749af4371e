"""The state machine of one DPF run: its partitions and their states, what to hand out next,
what an outcome or a lost worker leads to, and the run's final status.

No Ray, no I/O, no clock of its own (every method that needs the time takes ``now``), so every
path (retry, back-off, fail_fast, cancel, resume, node loss) is a fast unit test.

Partition states: ``PENDING`` (queued, or waiting for a retry) -> ``RUNNING`` -> ``DONE`` |
``FAILED`` | ``INTERNAL_ERROR`` | ``CANCELLED``; a retry or a lost node sends ``RUNNING`` back to
``PENDING``. Every exit of a run (:meth:`RunState.finish`) leaves every partition final.

Runs in the run's scheduler.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence

from shoal.dpf.engine.policies import GiveUp, Requeue, Retry, RetryPolicy, StopPolicy, WorkerLossPolicy
from shoal.dpf.entities import PartitionRecord, PartitionStatus, RunStatus
from shoal.dpf.specs import PartitionInput, TaskOutcome, TaskSpec

#: The first batches, before any partition's duration is known.
FIRST_BATCH = 4
#: Batches aim at this many seconds of work, so a slow partition cannot hold many others back.
TARGET_BATCH_S = 0.5
#: At most this many partitions per worker call.
MAX_BATCH = 256
#: Hand out work so that every slot gets about this many batches of what is left: the tail stays
#: balanced because batches shrink as the queue empties.
BATCHES_PER_SLOT = 4


class RunState:
    """Partitions of a run and the rules that move them; see the module docstring."""

    def __init__(
        self,
        inputs: Sequence[PartitionInput],
        previous: Mapping[int, PartitionRecord] | None = None,
        *,
        retry: RetryPolicy | None = None,
        loss: WorkerLossPolicy | None = None,
        stop: StopPolicy | None = None,
    ) -> None:
        self.inputs = {p.index: p for p in inputs}
        self.retry = retry or RetryPolicy()
        self.loss = loss or WorkerLossPolicy()
        self.stop = stop or StopPolicy()
        self.records: dict[int, PartitionRecord] = {}
        previous = previous or {}
        for item in inputs:
            earlier = previous.get(item.index)
            if earlier is not None and earlier.status == PartitionStatus.DONE:
                self.records[item.index] = earlier
            else:
                self.records[item.index] = PartitionRecord(item.partition_id, item.index)
        self.status = RunStatus.IN_PROGRESS
        self.message = ""
        self.stopping = False
        self._pending: deque[int] = deque()
        self._retries: list[tuple[float, int]] = []
        self._running: set[int] = set()
        self._dirty: set[int] = set()
        self._done_seconds = 0.0
        self._done_count = 0
        for index in sorted(self.records):
            record = self.records[index]
            if record.status != PartitionStatus.DONE:
                record.status = PartitionStatus.PENDING
                self._pending.append(index)
                self._dirty.add(index)

    # -- what is left ----------------------------------------------------------------------

    @property
    def has_work(self) -> bool:
        """Something is queued, waiting for a retry or running."""
        return bool(self._pending or self._retries or self._running)

    @property
    def queued(self) -> int:
        return len(self._pending)

    def next_retry_at(self) -> float | None:
        return self._retries[0][0] if self._retries else None

    def release_due(self, now: float) -> None:
        """Retries whose back-off has passed join the front of the queue."""
        due = []
        while self._retries and self._retries[0][0] <= now:
            due.append(heapq.heappop(self._retries)[1])
        self._pending.extendleft(reversed(due))

    @property
    def has_dirty(self) -> bool:
        return bool(self._dirty)

    def take_dirty(self) -> list[PartitionRecord]:
        """The records changed since the last call (for the progress log)."""
        changed = [self.records[i] for i in sorted(self._dirty)]
        self._dirty.clear()
        return changed

    def counts(self) -> dict[str, int]:
        """Partitions per status, every status listed."""
        counts = {status.value: 0 for status in PartitionStatus}
        for record in self.records.values():
            counts[record.status.value] += 1
        return counts

    # -- handing out work ------------------------------------------------------------------

    def batch_size(self, slots: int) -> int:
        """How many partitions the next worker call gets, given ``slots`` workers in all."""
        share = math.ceil(len(self._pending) / max(1, slots * BATCHES_PER_SLOT))
        if self._done_count:
            mean = self._done_seconds / self._done_count
            by_time = max(1, int(TARGET_BATCH_S / mean)) if mean > 0 else MAX_BATCH
        else:
            by_time = FIRST_BATCH
        return max(1, min(share, by_time, MAX_BATCH))

    def next_batch(self, slots: int, now: float) -> list[TaskSpec]:
        """Start the next batch (empty when nothing is queued or the run is stopping)."""
        if self.stopping:
            return []
        tasks: list[TaskSpec] = []
        for _ in range(min(self.batch_size(slots), len(self._pending))):
            if tasks and self.records[self._pending[0]].extra.get("isolated"):
                break  # suspected of killing its worker: runs alone
            index = self._pending.popleft()
            record = self.records[index]
            record.status = PartitionStatus.RUNNING
            record.attempts += 1
            record.started_at, record.ended_at = now, None
            self._running.add(index)
            self._dirty.add(index)
            item = self.inputs[index]
            tasks.append(
                TaskSpec(
                    item.partition_id, index, record.attempts, item.files, item.record_batches, item.folder
                )
            )
            if record.extra.get("isolated"):
                break
        return tasks

    # -- what comes back -------------------------------------------------------------------

    def on_outcome(self, outcome: TaskOutcome, now: float) -> None:
        """A worker finished an attempt (its function returned or raised)."""
        record = self.records[outcome.index]
        if outcome.index not in self._running or outcome.attempt != record.attempts:
            return  # a stale report (an attempt already given up on)
        self._running.discard(outcome.index)
        self._dirty.add(outcome.index)
        record.node_id = outcome.node_id
        record.started_at, record.ended_at = outcome.started_at, outcome.ended_at
        if outcome.status == "DONE":
            record.status, record.error = PartitionStatus.DONE, None
            self._done_seconds += max(0.0, outcome.ended_at - outcome.started_at)
            self._done_count += 1
            return
        record.failures += 1
        record.error = outcome.error or "failed"
        self._apply(record, self.retry.on_failure(record, record.error, retryable=outcome.retryable), now)

    def on_lost(
        self, indexes: Iterable[int], *, node_lost: bool, detail: str, now: float, running: int | None = None
    ) -> list[tuple[int, int]]:
        """The worker running ``indexes`` (its unreported partitions) is gone.

        Its node was lost: every one of them runs again. It died on a live node while running
        ``running``: that one is given up (``INTERNAL_ERROR``), the others had not started or had
        finished unreported and run again. When the group cannot tell which one was running, a
        lone partition is the one; several run again one per batch, so the next death names it.

        Returns ``(index, attempt)`` of the cut-off attempts whose partitions run again: their
        worker may still be alive somewhere, so the scheduler fences them off."""
        left = [i for i in indexes if i in self._running]
        cut_off = [(i, self.records[i].attempts) for i in left]
        if not node_lost and running is None and len(left) == 1:
            running = left[0]
        for index in reversed(left):  # requeued at the front, in their order
            record = self.records[index]
            self._running.discard(index)
            self._dirty.add(index)
            record.ended_at = now
            if node_lost:
                record.lost += 1
                record.error = f"node lost: {detail}"
                self._apply(record, self.loss.on_lost(record, True, detail), now)
            elif index == running or (running is None and record.extra.get("isolated")):
                record.error = detail
                self._apply(record, self.loss.on_lost(record, False, detail), now)
            else:
                if running is None:
                    record.extra["isolated"] = True
                self._apply(record, Requeue(), now)
        return [(i, a) for i, a in cut_off if self.records[i].status == PartitionStatus.PENDING]

    def on_batch_error(self, indexes: Iterable[int], error: str, now: float) -> None:
        """The worker could not run ``indexes`` at all (shoal's own error on the worker): each counts
        as a failed attempt, so the retry policy applies."""
        for index in indexes:
            if index not in self._running:
                continue
            record = self.records[index]
            self._running.discard(index)
            self._dirty.add(index)
            record.ended_at = now
            record.failures += 1
            record.error = error
            self._apply(record, self.retry.on_failure(record, error), now)

    def _apply(self, record: PartitionRecord, decision: Retry | Requeue | GiveUp, now: float) -> None:
        if isinstance(decision, Retry):
            record.status = PartitionStatus.PENDING
            heapq.heappush(self._retries, (now + decision.delay_s, record.index))
        elif isinstance(decision, Requeue):
            record.status = PartitionStatus.PENDING
            self._pending.appendleft(record.index)
        else:
            record.status, record.error = decision.status, decision.error
            stop = self.stop.after_final(record)
            if stop is not None and not self.stopping:
                self.stopping = True
                self.message = stop.message

    # -- the end ---------------------------------------------------------------------------

    def cancel(self, message: str = "cancelled") -> None:
        """Stop handing out work; :meth:`finish` marks what did not finish ``CANCELLED``."""
        self.stopping = True
        self.status = RunStatus.CANCELLED
        self.message = message

    def abort(self, message: str) -> None:
        """The scheduler cannot go on (its own failure, or no worker left): the run is
        ``INTERNAL_ERROR``, unfinished partitions too, and :meth:`finish` keeps that."""
        self.stopping = True
        self.status = RunStatus.INTERNAL_ERROR
        self.message = message
        for index in [*self._pending, *(i for _, i in self._retries), *self._running]:
            record = self.records[index]
            if not record.status.is_final:
                record.status = PartitionStatus.INTERNAL_ERROR
                record.error = record.error or message
                self._dirty.add(index)
        self._pending.clear()
        self._retries.clear()
        self._running.clear()

    def finish(self) -> RunStatus:
        """Every partition final, and the run's status; safe to call more than once."""
        for record in self.records.values():
            if not record.status.is_final:
                record.status = PartitionStatus.CANCELLED
                self._dirty.add(record.index)
        self._pending.clear()
        self._retries.clear()
        self._running.clear()
        if self.status in (RunStatus.CANCELLED, RunStatus.INTERNAL_ERROR):
            return self.status
        done = sum(1 for r in self.records.values() if r.status == PartitionStatus.DONE)
        if done == len(self.records):
            self.status = RunStatus.SUCCESS
        elif done == 0:
            self.status = RunStatus.FAILURE
        else:
            self.status = RunStatus.PARTIAL_FAILURE
        return self.status

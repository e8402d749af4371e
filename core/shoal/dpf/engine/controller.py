"""The loop that drives a :class:`~shoal.dpf.engine.state.RunState` against a worker group.

The :class:`WorkerGroup` protocol is the seam to the executor: ``shoal.runtime.dpf_workers``
implements it with Ray tasks, tests with a fake. The loop hands batches to free slots (each slot
takes up to its group's pipeline depth of batches, so a worker never waits for the scheduler),
feeds back what the group reports, checks for a cancel request, and flushes the progress log.
Whatever happens (cancel, fail_fast, a lost node, an error of its own), it leaves every
partition final and the run in a final status.

Runs in the run's scheduler (plain Python; unit-tested with a fake worker group).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from shoal.dpf.engine.state import RunState
from shoal.dpf.entities import PartitionRecord, RunStatus
from shoal.dpf.specs import BatchSpec, TaskOutcome

log = logging.getLogger(__name__)

CANCEL_CHECK_EVERY_S = 0.5
POLL_S = 0.2


@dataclass(frozen=True)
class PartitionFinished:
    """One partition of a batch finished (its function returned or raised)."""

    batch_id: int
    outcome: TaskOutcome


@dataclass(frozen=True)
class BatchEnded:
    """A batch's worker call returned; every partition in it was reported."""

    batch_id: int


@dataclass(frozen=True)
class BatchLost:
    """A batch's worker is gone. ``node_lost``: its node died (run the rest elsewhere); otherwise
    the worker process died on a node that stayed up, while running partition ``running`` (its
    index, None when the group cannot tell)."""

    batch_id: int
    node_lost: bool
    detail: str
    running: int | None = None


@dataclass(frozen=True)
class BatchFailed:
    """shoal's own code failed on the worker before or between partitions."""

    batch_id: int
    error: str


WorkerEvent = PartitionFinished | BatchEnded | BatchLost | BatchFailed


class WorkerGroup(Protocol):
    """Where batches run. Slots are numbered; a slot runs its batches one after the other."""

    def start(self) -> None:
        """Make the slots ready (raises when there is nowhere to run)."""

    def slots(self) -> int:
        """How many slots can run work now (lost nodes' slots no longer count)."""

    def free_slots(self) -> list[int]:
        """Slots that can take another batch now (fewer in flight than the pipeline depth)."""

    def submit(self, slot: int, batch: BatchSpec) -> None:
        """Start ``batch`` on ``slot``."""

    def poll(self, timeout: float) -> list[WorkerEvent]:
        """What happened since the last poll; waits up to ``timeout`` s for something."""

    def cancel_all(self) -> None:
        """Stop every batch in flight."""

    def shutdown(self) -> None:
        """Release everything the group holds."""


class ProgressSink(Protocol):
    """Where the run's records go (``shoal.dpf.progress.ProgressWriter`` on a stage)."""

    def due(self, now: float, changed: bool) -> bool:
        """Whether a flush is due now (throttling and heartbeat)."""

    def flush(
        self,
        changed: list[PartitionRecord],
        status: RunStatus,
        message: str,
        counts: dict[str, int],
        now: float,
    ) -> None:
        """Write the changed records and the run's state."""


class Controller:
    """Runs one run to its end. ``cancel_requested`` is polled at most every half second;
    ``fence(attempts)`` is told of cut-off attempts before their partitions run again, so that a
    worker that outlived its node cannot commit them (:mod:`shoal.dpf.attempts`)."""

    def __init__(
        self,
        state: RunState,
        group: WorkerGroup,
        progress: ProgressSink,
        *,
        cancel_requested: Callable[[], bool] = lambda: False,
        before_final_flush: Callable[[], None] = lambda: None,
        fence: Callable[[list[tuple[int, int]]], None] = lambda attempts: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.group = group
        self.progress = progress
        self.cancel_requested = cancel_requested
        self.before_final_flush = before_final_flush
        self.fence = fence
        self.clock = clock
        self._batches: dict[int, set[int]] = {}
        self._next_batch_id = 0

    def run(self) -> RunStatus:
        state = self.state
        try:
            if state.has_work:
                self.group.start()
                self._loop()
        except Exception as exc:
            log.error("the DPF scheduler failed: %s", traceback.format_exc())
            state.abort(f"the scheduler failed ({type(exc).__name__}: {exc}); resume the run to continue it")
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: the run's job is being stopped
            state.cancel(f"the run's driver was stopped ({type(exc).__name__}); resume() continues the run")
            raise
        finally:
            try:
                if self._batches:
                    self.group.cancel_all()
            except Exception:
                log.exception("cancelling the batches still in flight failed")
            try:
                self.group.shutdown()
            except Exception:
                log.exception("shutting the worker group down failed")
            status = state.finish()
            try:
                self.before_final_flush()
            except Exception:
                log.exception("finishing the run failed")
            self._flush(force=True)
        return status

    def _flush(self, force: bool = False) -> None:
        state, now = self.state, self.clock()
        if force or self.progress.due(now, state.has_dirty):
            self.progress.flush(state.take_dirty(), state.status, state.message, state.counts(), now)

    def _loop(self) -> None:
        state = self.state
        last_cancel_check = 0.0
        while state.has_work:
            now = self.clock()
            if now - last_cancel_check >= CANCEL_CHECK_EVERY_S:
                last_cancel_check = now
                if self.cancel_requested():
                    state.cancel("cancelled")
                    return
            state.release_due(now)
            self._dispatch(now)
            if state.has_work and self.group.slots() == 0:
                state.abort("no node of the job is left to run partitions on; resume the run on a live pool")
                return
            self._handle(self.group.poll(self._poll_timeout(now)))
            if state.stopping:
                return
            self._flush()

    def _poll_timeout(self, now: float) -> float:
        due = self.state.next_retry_at()
        if due is None:
            return POLL_S
        return max(0.0, min(POLL_S, due - now))

    def _dispatch(self, now: float) -> None:
        for slot in self.group.free_slots():
            tasks = self.state.next_batch(self.group.slots(), now)
            if not tasks:
                return
            batch = BatchSpec(self._next_batch_id, tuple(tasks))
            self._next_batch_id += 1
            self._batches[batch.batch_id] = {t.index for t in tasks}
            self.group.submit(slot, batch)

    def _handle(self, events: list[WorkerEvent]) -> None:
        state = self.state
        for event in events:
            now = self.clock()
            left = self._batches.get(event.batch_id)
            if left is None:
                continue
            if isinstance(event, PartitionFinished):
                left.discard(event.outcome.index)
                state.on_outcome(event.outcome, now)
                continue
            self._batches.pop(event.batch_id)
            if isinstance(event, BatchLost):
                cut_off = state.on_lost(
                    sorted(left),
                    node_lost=event.node_lost,
                    detail=event.detail,
                    now=now,
                    running=event.running,
                )
                if cut_off:
                    self.fence(cut_off)  # before any of them is handed out again
            elif isinstance(event, BatchFailed):
                state.on_batch_error(sorted(left), event.error, now)
            elif left:  # ended without reporting some partitions: shoal's bug, never the user's
                state.on_batch_error(sorted(left), "the worker did not report this partition", now)

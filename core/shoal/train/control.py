"""The training controller: watches every rank of a worker group and decides how training ends.

The :class:`TrainWorkerGroup` protocol is the seam to the executor:
``shoal.runtime.train_group`` implements it with Ray actors, the unit tests with a fake. The
group reports what happened to each rank (:class:`RankFinished`, :class:`RankFailed`,
:class:`RankProgressed`); :class:`TrainController` turns that into a decision
(:class:`Continue`, :class:`Succeed`, :class:`Fail`) under its :class:`Deadlines`:

* a rank that raised fails the run with its exception as the root cause; a rank that **died**
  (killed, out of memory, node lost) is reported before peers that broke because it died (the
  controller waits ``root_cause_grace_s`` for a death to show before blaming a peer);
* a rank is **hung** when it shows no sign of progress (:mod:`shoal.train.progress`) for
  ``hang_timeout_s``, when it shows none at all within ``first_progress_s`` of the start, or when
  it is still running ``hang_timeout_s`` after another rank finished without a sign since;
* ``timeout_s`` bounds the whole training.

:func:`run_ranks` is the loop; a :class:`Fail` becomes a :class:`~shoal.errors.TrainingError` that
names each rank, its node and pid, its log and what the group can tell of where it waits.

Runs on the training driver (plain Python; unit-tested with a fake group and clock).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from shoal.errors import TrainingError
from shoal.train.ranks import RankInfo, WorkerSlot

DEFAULT_HANG_TIMEOUT_S = 120.0
DEFAULT_FIRST_PROGRESS_S = 600.0
ROOT_CAUSE_GRACE_S = 2.0
POLL_S = 0.5


# -- what the group reports ------------------------------------------------------------------


@dataclass(frozen=True)
class RankFinished:
    """Rank ``rank`` returned ``result``."""

    rank: int
    result: Any


@dataclass(frozen=True)
class RankFailed:
    """Rank ``rank`` ended without a result. ``died``: its process or node is gone (no exception
    of its own); otherwise ``cause`` is the exception it raised, ``detail`` its text or traceback."""

    rank: int
    died: bool
    detail: str
    cause: BaseException | None = None


@dataclass(frozen=True)
class RankProgressed:
    """Rank ``rank`` has made ``count`` signs of progress so far, the last one ``what``."""

    rank: int
    count: int
    what: str = ""


RankEvent = RankFinished | RankFailed | RankProgressed


class TrainWorkerGroup(Protocol):
    """The ranks of one training run, placed on the job's nodes."""

    def start(self) -> list[WorkerSlot]:
        """Place one worker per rank; their nodes, addresses, pids, ports and log paths."""

    def launch(self, backend: Any, ranks: Sequence[RankInfo], tasks: Sequence[Any], setup: Any) -> None:
        """Start ``backend.train`` on every rank with its own task."""

    def poll(self, timeout: float) -> list[RankEvent]:
        """What happened since the last poll (finished, failed ranks and progress counts); waits up
        to ``timeout`` s for something."""

    def diagnose(self, ranks: Sequence[int]) -> dict[int, str]:
        """For each rank, what the group can tell: the last lines of its log, where it waits."""

    def shutdown(self) -> None:
        """Stop every worker and release what the group holds (safe to call twice)."""


# -- decisions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Continue:
    """Nothing to decide yet."""


@dataclass(frozen=True)
class Succeed:
    """Every rank finished: their results by rank."""

    results: list[Any]


@dataclass(frozen=True)
class Fail:
    """Training ends with an error. ``why`` holds one line per rank in ``ranks``."""

    kind: Literal["died", "failed", "hung", "timeout"]
    ranks: tuple[int, ...]
    why: dict[int, str]
    cause: BaseException | None = None


Decision = Continue | Succeed | Fail


@dataclass(frozen=True)
class Deadlines:
    """When a rank is taken as hung, and how long training may take (None: no limit)."""

    hang_timeout_s: float = DEFAULT_HANG_TIMEOUT_S
    first_progress_s: float = DEFAULT_FIRST_PROGRESS_S
    timeout_s: float | None = None
    root_cause_grace_s: float = ROOT_CAUSE_GRACE_S

    def describe(self) -> str:
        return (
            f"hang_timeout_s={self.hang_timeout_s:g} (SHOAL_TRAIN_HANG_TIMEOUT_S), first sign of progress "
            f"within {self.first_progress_s:g} s (SHOAL_TRAIN_FIRST_PROGRESS_S)"
        )


@dataclass(frozen=True)
class RestartPolicy:
    """Whether training starts again on a new worker group after it failed (``max_failures``
    times at most, ``SHOAL_TRAIN_MAX_FAILURES``, default 0). Only a rank that **died** (killed,
    out of memory, node lost) restarts it: an exception the training code raised, or a hang,
    would most likely come back. The new group trains from the start: none of the built-in
    backends resumes from a checkpoint, and a ``train_func`` that saves its own can load it."""

    max_failures: int = 0

    def restart(self, error: TrainingError, failures: int) -> bool:
        """``error`` ended an attempt after ``failures`` restarts: start again?"""
        return error.kind == "died" and failures < self.max_failures


@dataclass
class _Rank:
    last_sign_at: float
    progress: int = 0
    what: str = ""
    finished: bool = False
    result: Any = None
    failure: RankFailed | None = None
    failed_at: float = 0.0

    @property
    def running(self) -> bool:
        return not self.finished and self.failure is None


@dataclass
class TrainController:
    """The state of every rank and the decision it leads to. Feed it events with
    :meth:`observe`; ask :meth:`decide`."""

    world_size: int
    deadlines: Deadlines
    started_at: float
    _ranks: list[_Rank] = field(init=False)
    _first_finished: tuple[int, float] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._ranks = [_Rank(last_sign_at=self.started_at) for _ in range(self.world_size)]

    def observe(self, event: RankEvent, now: float) -> None:
        rank = self._ranks[event.rank]
        if isinstance(event, RankProgressed):
            if event.count > rank.progress:
                rank.progress, rank.what, rank.last_sign_at = event.count, event.what, now
        elif isinstance(event, RankFinished):
            rank.finished, rank.result = True, event.result
            if self._first_finished is None:
                self._first_finished = (event.rank, now)
        elif rank.failure is None:
            rank.failure, rank.failed_at = event, now

    def decide(self, now: float) -> Decision:
        failed = self._failure(now)
        if failed is not None:
            return failed
        if all(r.finished for r in self._ranks):
            return Succeed([r.result for r in self._ranks])
        hung = {index: why for index, why in self._hung(now)}
        if hung:
            return Fail("hung", tuple(sorted(hung)), hung)
        limit = self.deadlines.timeout_s
        if limit is not None and now - self.started_at > limit:
            running = [i for i, r in enumerate(self._ranks) if r.running]
            why = {i: f"still running when training reached its timeout of {limit:g} s" for i in running}
            return Fail("timeout", tuple(running), why)
        return Continue()

    def _failure(self, now: float) -> Fail | None:
        failures = sorted((r.failed_at, i) for i, r in enumerate(self._ranks) if r.failure is not None)
        if not failures:
            return None
        for _, index in failures:  # a death is the root cause of the peers' errors
            failure = self._ranks[index].failure
            assert failure is not None
            if failure.died:
                return Fail("died", (index,), {index: failure.detail})
        first_at, index = failures[0]
        waiting = any(r.running for r in self._ranks)
        if waiting and now - first_at < self.deadlines.root_cause_grace_s:
            return None  # a peer's death may still show up, and it would be the cause
        failure = self._ranks[index].failure
        assert failure is not None
        return Fail("failed", (index,), {index: failure.detail}, failure.cause)

    def _hung(self, now: float) -> list[tuple[int, str]]:
        hang, first = self.deadlines.hang_timeout_s, self.deadlines.first_progress_s
        found = []
        for index, rank in enumerate(self._ranks):
            if not rank.running:
                continue
            if self._first_finished is not None:
                done_rank, done_at = self._first_finished
                since = max(done_at, rank.last_sign_at)
                if now - since > hang:
                    found.append(
                        (
                            index,
                            f"still running {hang:g} s after rank {done_rank} finished, with no sign of "
                            f"progress since{self._last(rank)}",
                        )
                    )
            elif rank.progress and now - rank.last_sign_at > hang:
                found.append((index, f"no sign of progress for {hang:g} s{self._last(rank)}"))
            elif not rank.progress and now - self.started_at > first:
                found.append((index, f"no sign of progress at all in the {first:g} s since training started"))
        return found

    @staticmethod
    def _last(rank: _Rank) -> str:
        if not rank.progress:
            return " (it showed none at all)"
        return f" (its last: {rank.what or 'a step'}, after {rank.progress} sign(s) of progress)"


# -- the loop --------------------------------------------------------------------------------


def run_ranks(
    group: TrainWorkerGroup,
    slots: Sequence[WorkerSlot],
    backend: Any,
    ranks: Sequence[RankInfo],
    tasks: Sequence[Any],
    setup: Any,
    deadlines: Deadlines,
    *,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = POLL_S,
) -> list[Any]:
    """Train every rank on ``group``; their results by rank, or :class:`TrainingError`."""
    group.launch(backend, ranks, tasks, setup)
    controller = TrainController(len(ranks), deadlines, started_at=clock())
    while True:
        for event in group.poll(poll_s):
            controller.observe(event, clock())
        decision = controller.decide(clock())
        if isinstance(decision, Succeed):
            return decision.results
        if isinstance(decision, Fail):
            raise training_error(decision, slots, group.diagnose(list(decision.ranks)), deadlines)


def where(slot: WorkerSlot) -> str:
    return f"rank {slot.rank} on node {slot.node_id[:8]} ({slot.address}, pid {slot.pid})"


def its_log(slot: WorkerSlot) -> str:
    return f"its output: {slot.log_path} on node {slot.node_id[:8]}"


def training_error(
    decision: Fail, slots: Sequence[WorkerSlot], diagnosis: dict[int, str], deadlines: Deadlines
) -> TrainingError:
    """The error a :class:`Fail` decision raises, naming each rank and where to look."""
    first = slots[decision.ranks[0]]
    if decision.kind == "died":
        message = (
            f"training worker {where(first)} died (killed, out of memory or its node was lost); "
            f"the other workers were stopped. {its_log(first)}. Ray says: {decision.why[first.rank]}"
        )
    elif decision.kind == "failed":
        cause = decision.cause
        detail = f"{type(cause).__name__}: {cause}" if cause is not None else decision.why[first.rank]
        message = (
            f"training worker {where(first)} failed: {detail}; {its_log(first)}.\n\n"
            f"Remote traceback:\n{decision.why[first.rank]}"
        )
    else:
        head = (
            f"training stopped: {len(decision.ranks)} rank(s) taken as hung ({deadlines.describe()})"
            if decision.kind == "hung"
            else f"training did not finish within {deadlines.timeout_s:g} s"
        )
        parts = [head + "; the workers were stopped:"]
        for index in decision.ranks:
            slot = slots[index]
            parts.append(f"- {where(slot)}: {decision.why[index]}; {its_log(slot)}")
            found = diagnosis.get(index, "").rstrip()
            if found:
                parts.append("\n".join("    " + line for line in found.splitlines()))
        message = "\n".join(parts)
    error = TrainingError(
        message, rank=first.rank, node_id=first.node_id, log_path=first.log_path, kind=decision.kind
    )
    if decision.cause is not None:
        error.__cause__ = decision.cause
    return error

"""A pool's job queue: first in, first out, by submission time.

Plain Python with no Ray in it: the pool service (:mod:`shoal.runtime.pool_service`) drives it,
and the unit tests drive it with fake jobs. Jobs start strictly in submission order: the job at
the head reserves its nodes (it may wait for them), and the jobs behind it wait until it has them.
So one job at a time asks Ray for nodes, however many are queued.

Runs in the pool service actor.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar


def service_name(pool_name: str) -> str:
    """The Ray actor name of a pool's service (namespace ``shoal``)."""
    return f"shoal-pool-{pool_name}"


class QueuedJob(Protocol):
    name: str

    def reserve(self) -> bool:
        """Reserve the job's nodes (blocks); False when the job ended instead."""

    def execute(self) -> object:
        """Run the reserved job to its end, then release its nodes."""

    def cancel(self) -> str:
        """Stop the job (from any thread)."""

    def abandon(self, reason: str) -> str:
        """End the job because its pool stops (from any thread)."""


J = TypeVar("J", bound=QueuedJob)


@dataclass(order=True)
class _Entry(Generic[J]):
    submitted: float
    seq: int
    job: J = field(compare=False)


class JobQueue(Generic[J]):
    """FIFO per pool. ``start_thread`` runs a callable on a new thread (tests pass a fake)."""

    def __init__(self, start_thread: Callable[[Callable[[], None], str], None] | None = None) -> None:
        self._entries: list[_Entry[J]] = []
        self._running: dict[str, J] = {}
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._stopped = False
        self.started_order: list[str] = []
        self._start_thread = start_thread or _daemon_thread

    def submit(self, job: J, submitted: float) -> None:
        with self._cond:
            bisect.insort(self._entries, _Entry(submitted, next(self._seq), job))
            self._cond.notify_all()

    def names(self) -> list[str]:
        """Queued jobs, head first."""
        with self._cond:
            return [e.job.name for e in self._entries]

    def knows(self, name: str) -> bool:
        with self._cond:
            return name in self._running or any(e.job.name == name for e in self._entries)

    def cancel(self, name: str) -> str | None:
        """Cancel a queued or running job; None when it is not known here."""
        with self._cond:
            for position, entry in enumerate(self._entries):
                if entry.job.name != name:
                    continue
                if position == 0:
                    return entry.job.cancel()  # reserving now: its reserve() sees the cancel
                answer = entry.job.cancel()
                entry.job.reserve()  # a cancelled job's reserve() ends it at once
                # only now, its end written: a job the queue no longer knows but whose status has
                # not ended is taken for one lost by a restarted cluster (INTERNAL_ERROR)
                self._entries.remove(entry)
                return answer
            job = self._running.get(name)
            return job.cancel() if job is not None else None

    def abandon_all(self, reason: str) -> list[str]:
        """Every queued and running job ends (:meth:`QueuedJob.abandon`): the pool stops. The
        names of the jobs it ended."""
        ended = []
        with self._cond:
            for position, entry in enumerate(list(self._entries)):
                entry.job.abandon(reason)
                ended.append(entry.job.name)
                if position > 0:  # as for a cancel: its reserve() ends it at once, then it goes
                    entry.job.reserve()
                    self._entries.remove(entry)
            running = list(self._running.values())
        for job in running:
            job.abandon(reason)
            ended.append(job.name)
        return ended

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def step(self, timeout: float | None = None) -> bool:
        """Take the head of the queue: reserve its nodes, then start it. False when nothing was
        queued within ``timeout`` s (or the queue was stopped)."""
        with self._cond:
            if not self._entries:
                self._cond.wait(timeout)
            if self._stopped or not self._entries:
                return False
            head = self._entries[0].job
        reserved = head.reserve()
        with self._cond:
            self._entries = [e for e in self._entries if e.job is not head]
            if reserved:
                self._running[head.name] = head
                self.started_order.append(head.name)
        if reserved:
            self._start_thread(lambda: self._execute(head), f"shoal-job-{head.name}")
        return True

    def _execute(self, job: J) -> None:
        try:
            job.execute()
        finally:
            with self._cond:
                self._running.pop(job.name, None)

    def run_forever(self) -> None:
        while not self._stopped:
            self.step(timeout=1.0)


def _daemon_thread(target: Callable[[], None], name: str) -> None:
    threading.Thread(target=target, name=name, daemon=True).start()

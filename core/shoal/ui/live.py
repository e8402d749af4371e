"""Live pages: one reader per watched subject, shared by all of its watchers (``shoal ui`` process).

A page that follows changes opens a server-sent-events stream (``/live/...``, see
:mod:`shoal.ui.app`). The :class:`Hub` keeps one :class:`Subject` per distinct thing watched (a
job's page, a run's page with its table's filter, sort and page, a pool's page). While a subject
has watchers it reads its record every :data:`POLL_S` seconds, **once, whatever the number of
watchers**, and only when the snapshot it read differs from the last one does it hand it to every
watcher. With no watcher left, it stops reading. So twenty browsers on one run's page cost the
workspace what one costs: two reads a second of that run's records.

A reader may mark a snapshot :class:`Final` (a job that ended a while ago, a run that ended): its
subject then stops reading, and its watchers only get keep-alives.

Each subject counts its reads (:meth:`Hub.stats`, served at ``/api/live``), which is how a load
test shows that reads stay flat as watchers are added.

Plain asyncio, no Starlette: the tests drive it with a fake reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncGenerator, Callable, Hashable
from typing import Any

#: seconds between two reads of a watched subject (a page follows changes within this)
POLL_S = 0.5
#: seconds without a change after which a stream writes a keep-alive
HEARTBEAT_S = 2.0


class Final:
    """What a reader returns for a snapshot that will not change any more (a job that ended):
    its watchers get it, and the subject stops reading."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot


class ReadFailed(dict[str, str]):
    """The snapshot of a read that raised: ``{"error": message}`` (shown apart from the page's
    regions, as text)."""


def digest(snapshot: Any) -> str:
    """A short fingerprint of a snapshot: a page carries the one it was rendered with, and its
    stream skips a first snapshot that shows nothing new."""
    return hashlib.sha256(json.dumps(snapshot, sort_keys=True).encode()).hexdigest()[:16]


class Subject:
    """One watched thing: its reader, its last snapshot and version, and its watchers."""

    def __init__(self, key: Hashable, read: Callable[[], Any], poll_s: float) -> None:
        self.key = key
        self.read = read
        self.poll_s = poll_s
        self.version = 0
        self.snapshot: Any = None
        self.reads = 0
        self.watchers = 0
        self.final = False  # read for the last time: it will not change
        self._changed = asyncio.Event()  # set (and replaced) at each change
        self._task: asyncio.Task[None] | None = None

    def _read_once(self) -> Any:
        try:
            return self.read()
        except Exception as exc:  # shown on the page; the next read may succeed
            return ReadFailed(error=f"{type(exc).__name__}: {exc}")

    async def _poll(self) -> None:
        while self.watchers > 0:
            snapshot = await asyncio.to_thread(self._read_once)
            self.reads += 1
            final = isinstance(snapshot, Final)
            if final:
                snapshot = snapshot.snapshot
            if self.version == 0 or snapshot != self.snapshot:
                self.snapshot, self.version = snapshot, self.version + 1
                changed, self._changed = self._changed, asyncio.Event()
                changed.set()  # wakes every watcher waiting for this change
            if final:
                self.final = True
                return
            await asyncio.sleep(self.poll_s)

    async def watch(self, heartbeat_s: float | None = None) -> AsyncGenerator[Any, None]:
        """The current snapshot, then each new one, until the caller stops iterating; ``None``
        after ``heartbeat_s`` without a change (a stream then writes a keep-alive: writing is how
        a server learns that its browser went away)."""
        self.watchers += 1
        if not self.final and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._poll())
        seen = 0
        try:
            while True:
                if self.version > seen:  # no await between this test and the wait below
                    seen = self.version
                    yield self.snapshot
                    continue
                try:
                    await asyncio.wait_for(self._changed.wait(), heartbeat_s)
                except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                    yield None
        finally:
            self.watchers -= 1


class Hub:
    """The subjects being watched, by key."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self.subjects: dict[Hashable, Subject] = {}

    async def watch(
        self, key: Hashable, read: Callable[[], Any], heartbeat_s: float | None = None
    ) -> AsyncGenerator[Any, None]:
        """Snapshots of ``key`` (read with ``read`` when this is its first watcher); ``None`` after
        ``heartbeat_s`` without a change."""
        subject = self.subjects.get(key)
        if subject is None:
            subject = self.subjects[key] = Subject(key, read, self.poll_s)
        try:
            async with contextlib.aclosing(subject.watch(heartbeat_s)) as snapshots:
                async for snapshot in snapshots:
                    yield snapshot
        finally:
            if subject.watchers == 0 and self.subjects.get(key) is subject:
                del self.subjects[key]
                if subject._task is not None:
                    subject._task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await subject._task

    def stats(self) -> list[dict[str, Any]]:
        """Each subject: its key, watchers, reads so far and version (the number of changes)."""
        return [
            {
                "key": str(key),
                "watchers": s.watchers,
                "reads": s.reads,
                "version": s.version,
                "final": s.final,
            }
            for key, s in self.subjects.items()
        ]

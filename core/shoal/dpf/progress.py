"""A run's progress record on its stage, as appended events rather than one rewritten file.

Under ``{run_id}/_shoal/progress/``:

- ``state.json``: the run's status, message, heartbeat, job id and counts per partition status
  (small; rewritten at every flush, at most every half second, and every few seconds as a
  heartbeat);
- ``events/<seq>.jsonl``: one file per flush with the records of the partitions that changed since
  the flush before, one JSON line each;
- ``snapshot.json``: every record up to an event sequence number. It is written when the events
  since the last snapshot hold more bytes than the snapshot itself (or there are many of them),
  and the events it covers are then removed: writing stays linear in the number of changes.

All three are written atomically. Events, snapshots and every ``state.json`` that changes the
status or follows new events are fsynced: they are what ``resume`` and ``restore_from`` trust. A
heartbeat alone (nothing changed) is not: losing one to a machine crash costs nothing.
A reader rebuilds the records from the snapshot plus later events, and a :class:`ProgressReader`
kept between polls reads only what is new.

Writer: the run's scheduler. Readers: ``DPFRun`` anywhere, and the scheduler of a resumed run.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

from shoal.dpf import layout
from shoal.dpf.entities import PartitionRecord, RunStatus
from shoal.errors import RecordError, StageFileNotFoundError
from shoal.localfiles import write_atomically
from shoal.stages import Stage

FLUSH_EVERY_S = 0.5
HEARTBEAT_EVERY_S = 2.0
#: Compact into a snapshot once this many event files wait, whatever their size.
MAX_EVENT_FILES = 200


def progress_dir(run_id: str) -> str:
    return layout.internal(run_id, "progress")


def _state_path(run_id: str) -> str:
    return f"{progress_dir(run_id)}/state.json"


def _snapshot_path(run_id: str) -> str:
    return f"{progress_dir(run_id)}/snapshot.json"


def _events_dir(run_id: str) -> str:
    return f"{progress_dir(run_id)}/events"


def _event_path(run_id: str, seq: int) -> str:
    return f"{_events_dir(run_id)}/{seq:09d}.jsonl"


def write_state(stage: Stage, run_id: str, *, durable: bool = True, **state: Any) -> None:
    """Rewrite ``state.json`` (status, message, heartbeat, ...). ``durable=False`` (a heartbeat
    while the status stays IN_PROGRESS, on a local-folder stage) skips the fsync."""
    text = json.dumps({"run_id": run_id, **state}, sort_keys=True)
    local = None if durable else stage.backend.local_path(_state_path(run_id))
    if local is not None and os.path.isdir(os.path.dirname(local)):
        write_atomically(local, text, durable=False)
    else:
        stage.write_text(_state_path(run_id), text)


class ProgressWriter:
    """Appends the changed records of a run and keeps its state and heartbeat fresh."""

    def __init__(
        self,
        stage: Stage,
        run_id: str,
        *,
        job_id: str | None = None,
        started_at: float | None = None,
        previous: ProgressReader | None = None,
    ):
        """``previous``: a reader that has read the run's earlier records already (a resumed run);
        else they are read here."""
        self.stage = stage
        self.run_id = run_id
        self.job_id = job_id
        self.started_at = started_at or time.time()
        reader = previous
        if reader is None:
            reader = ProgressReader(stage, run_id)
            reader.refresh(strict=False)
        self._seq = reader.seq
        self._snapshot_bytes = reader.snapshot_bytes
        self._event_bytes = reader.event_bytes
        self._event_files = reader.event_files
        self._records: dict[int, dict[str, Any]] = {i: r.to_dict() for i, r in reader.records.items()}
        self._last_flush = 0.0
        self._last_state = 0.0

    def due(self, now: float, changed: bool) -> bool:
        """A flush is due every half second while records change, and as a heartbeat otherwise."""
        if changed:
            return now - self._last_flush >= FLUSH_EVERY_S
        return now - self._last_state >= HEARTBEAT_EVERY_S

    def flush(
        self,
        changed: Iterable[PartitionRecord],
        status: RunStatus,
        message: str,
        counts: dict[str, int],
        now: float | None = None,
    ) -> None:
        """Append the changed records as one event file, then rewrite ``state.json``."""
        now = time.time() if now is None else now
        changed = list(changed)
        if changed:
            self._seq += 1
            lines = []
            for record in changed:
                data = record.to_dict()
                self._records[record.index] = data
                lines.append(json.dumps(data, separators=(",", ":"), default=str))
            text = "\n".join(lines) + "\n"
            self.stage.write_text(_event_path(self.run_id, self._seq), text)
            self._event_bytes += len(text)
            self._event_files += 1
            if self._event_bytes > max(self._snapshot_bytes, 1 << 16) or self._event_files >= MAX_EVENT_FILES:
                self._compact()
            self._last_flush = now
        write_state(
            self.stage,
            self.run_id,
            durable=bool(changed) or status != RunStatus.IN_PROGRESS,
            status=status.value,
            message=message,
            heartbeat=now,
            started_at=self.started_at,
            job_id=self.job_id,
            counts=counts,
            seq=self._seq,
        )
        self._last_state = now

    def _compact(self) -> None:
        text = json.dumps({"seq": self._seq, "partitions": self._records}, separators=(",", ":"), default=str)
        self.stage.write_text(_snapshot_path(self.run_id), text)
        self._snapshot_bytes = len(text)
        for path in self.stage.list(_events_dir(self.run_id)):
            if _seq_of(path) <= self._seq:
                self.stage.remove(path, missing_ok=True)
        self._event_bytes = 0
        self._event_files = 0


def _seq_of(path: str) -> int:
    name = path.rsplit("/", 1)[-1]
    try:
        return int(name.split(".", 1)[0])
    except ValueError:
        return -1


class ProgressReader:
    """The records of a run, rebuilt from its snapshot and events; :meth:`refresh` reads only what
    is new since the previous call."""

    def __init__(self, stage: Stage, run_id: str) -> None:
        self.stage = stage
        self.run_id = run_id
        self.records: dict[int, PartitionRecord] = {}
        self.seq = 0
        self.snapshot_bytes = 0
        self.event_bytes = 0
        self.event_files = 0
        self._reading = ""

    def unreadable(self, path: str, exc: BaseException) -> RecordError:
        return RecordError(
            f"@{self.stage.name}/{path}, part of the progress record of DPF run {self.run_id!r}, cannot "
            f"be read ({type(exc).__name__}: {exc}): it was cut short or changed by hand. "
            f"DPFRun.restore_from({self.run_id!r}, {self.stage.name!r}).resume() runs the partitions "
            f"whose progress is lost again (their artifacts are replaced); or start a new run."
        )

    def state(self) -> dict[str, Any]:
        """``state.json`` (empty when the run has none yet); :class:`RecordError` when unreadable."""
        path = _state_path(self.run_id)
        try:
            text = self.stage.read_text(path)
        except StageFileNotFoundError:
            return {}
        try:
            state = json.loads(text)
            if not isinstance(state, dict):
                raise ValueError(f"a JSON object was expected, not {type(state).__name__}")
        except ValueError as exc:
            raise self.unreadable(path, exc) from exc
        return state

    def refresh(self, *, strict: bool = True, known_seq: int | None = None) -> dict[int, PartitionRecord]:
        """Apply the snapshot (if newer than what was read) and every later event file.

        ``known_seq``: the ``seq`` of a ``state.json`` just read; nothing is read when the records
        are that recent already. ``strict=False`` (a resumed run) treats an unreadable record as
        "nothing known"."""
        if known_seq is not None and known_seq <= self.seq:
            return self.records
        for _ in range(3):
            try:
                self._refresh()
                return self.records
            except StageFileNotFoundError:
                continue  # compacted while we read: start again from the new snapshot
            except (ValueError, KeyError, TypeError) as exc:
                if strict:
                    raise self.unreadable(self._reading or progress_dir(self.run_id), exc) from exc
                self.records, self.seq = {}, 0
                return self.records
        self._refresh()
        return self.records

    def _refresh(self) -> None:
        events = sorted(
            (seq, path) for path in self.stage.list(_events_dir(self.run_id)) if (seq := _seq_of(path)) > 0
        )
        gap = not events or events[0][0] > self.seq + 1
        # events we have not seen were compacted away: the snapshot has them
        if gap and self.stage.exists(_snapshot_path(self.run_id)):
            self._reading = _snapshot_path(self.run_id)
            text = self.stage.read_text(_snapshot_path(self.run_id))
            data = json.loads(text)
            if int(data["seq"]) > self.seq:
                self.records = {int(i): PartitionRecord.from_dict(r) for i, r in data["partitions"].items()}
                self.seq = int(data["seq"])
            self.snapshot_bytes = len(text)
        self.event_bytes, self.event_files = 0, 0
        for seq, path in events:
            self.event_files += 1
            if seq <= self.seq:
                continue  # read before, or in the snapshot
            self._reading = path
            if seq != self.seq + 1:
                raise ValueError(f"the event files after {self.seq} are missing (the next one is {seq})")
            text = self.stage.read_text(path)
            if not text.endswith("\n"):  # every event file ends its last line: this one was cut short
                raise ValueError(f"the file is cut short ({len(text)} bytes, its last line unfinished)")
            self.event_bytes += len(text)
            for line in text.splitlines():
                if line.strip():
                    record = PartitionRecord.from_dict(json.loads(line))
                    self.records[record.index] = record
            self.seq = seq
        self._reading = ""

"""One instance's log of a job, built while the job runs: which files it is made of, and how
their new lines are merged.

An instance's log holds the output of the work that ran on the instance's node:

- on instance 0, the payload's own output (stdout and stderr of the payload process), as is;
- on every instance, the output of the job's Ray workers on the node (tasks and actors), each
  line marked with the task or actor that printed it, as Ray marks them on a driver:
  ``(train_one pid=4242) loss 0.25``.

Ray writes each worker's output to ``worker-<worker id>-<job id>-<pid>.out|.err`` in the node's
log folder. A worker that the raylet started ahead of time carries the nil job id
``ffffffff`` in its name; the job it serves is the ``:job_id:`` line at the top of the file, so
files are matched on that line, not on their names. ``:task_name:`` and ``:actor_name:`` lines
say who prints the lines that follow.

Plain Python (no Ray): :class:`InstanceLogCollector` reads files and returns new complete lines;
the node agent calls it on a timer and appends what it returns to the stage
(:class:`LogPump`). Runs on every node of a job, in the node agent.
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

#: Ray's marker lines at the top of, and inside, a worker's output files.
JOB_MARKER = b":job_id:"
TASK_MARKER = b":task_name:"
ACTOR_MARKER = b":actor_name:"
OTHER_MARKERS = (b":event_summary:", b":info_message:")
NIL_JOB = "ffffffff"
WORKER_FILE = re.compile(r"^worker-[0-9a-f]+-(?P<job>[0-9a-f]+)-(?P<pid>\d+)\.(?:out|err)$")
#: Files not written since this long before the job began cannot hold its output.
MTIME_SLACK_S = 2.0


@dataclass
class _Followed:
    """A file being followed: how far it was read, and what an unfinished last line holds."""

    path: str
    pid: str = ""
    offset: int = 0
    partial: bytes = b""
    label: str = ""  # the task or actor now printing (worker files)
    owner: str | None = None  # the job id of a worker file, once its first line says it


@dataclass
class InstanceLogCollector:
    """The new lines of one instance's log, each time :meth:`poll` is called.

    ``payload_log`` is the payload's output file (instance 0 only); ``logs_dir`` is the node's Ray
    log folder; ``since`` is when the job began on this node (``time.time()``). The Ray job id of
    the payload's driver is learnt later (:meth:`set_ray_job_id`): until then only the payload's
    file is followed.
    """

    logs_dir: str | None
    payload_log: str | None = None
    since: float = 0.0
    ray_job_id: str | None = None
    #: the payload's last line (shoal's "job finished" banner): worker lines read in the same round
    #: go before it, so the payload's banners always bracket its tasks' output
    end_marker: bytes | None = None
    _payload: _Followed | None = None
    _workers: dict[str, _Followed] = field(default_factory=dict)
    _ignored: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.payload_log:
            self._payload = _Followed(self.payload_log)

    def set_ray_job_id(self, ray_job_id: str) -> None:
        self.ray_job_id = ray_job_id.strip().lower()

    def poll(self, *, final: bool = False) -> bytes:
        """The complete lines written since the last call, merged: the payload's first, then each
        worker's (but before the payload's ``end_marker`` line, if it came in this round). With
        ``final`` an unfinished last line is returned too (the job is over)."""
        payload = _read_lines(self._payload, final) if self._payload is not None else []
        workers: list[bytes] = []
        if self.ray_job_id and self.logs_dir:
            self._discover()
            for followed in sorted(self._workers.values(), key=lambda f: f.path):
                workers.extend(self._worker_lines(followed, final))
        cut = len(payload)
        if self.end_marker is not None:
            cut = next((i for i, line in enumerate(payload) if line.rstrip(b"\r\n") == self.end_marker), cut)
        return b"".join(payload[:cut] + workers + payload[cut:])

    def _discover(self) -> None:
        """Start following the worker files that may hold this job's output."""
        assert self.logs_dir is not None
        try:
            entries = list(os.scandir(self.logs_dir))
        except OSError:
            return
        for entry in entries:
            name = entry.name
            if name in self._ignored or entry.path in self._workers:
                continue
            match = WORKER_FILE.match(name)
            if match is None:
                self._ignored.add(name)
                continue
            job = match["job"]
            if job not in (self.ray_job_id, NIL_JOB):
                self._ignored.add(name)  # a worker started for another job never serves this one
                continue
            try:
                if entry.stat().st_mtime < self.since - MTIME_SLACK_S:
                    continue  # not written since the job began: look again next time
            except OSError:
                continue
            self._workers[entry.path] = _Followed(entry.path, pid=match["pid"])

    def _worker_lines(self, followed: _Followed, final: bool) -> list[bytes]:
        lines: list[bytes] = []
        for line in _read_lines(followed, final):
            if line.startswith(JOB_MARKER):
                followed.owner = line[len(JOB_MARKER) :].strip().decode(errors="replace").lower()
                continue
            if line.startswith(TASK_MARKER):
                followed.label = line[len(TASK_MARKER) :].strip().decode(errors="replace")
                continue
            if line.startswith(ACTOR_MARKER):
                followed.label = line[len(ACTOR_MARKER) :].strip().decode(errors="replace")
                continue
            if line.startswith(OTHER_MARKERS):
                continue
            if followed.owner != self.ray_job_id:
                continue  # another job's worker (or one whose job is not known yet)
            prefix = f"({followed.label or 'worker'} pid={followed.pid}) ".encode()
            lines.append(prefix + line)
        if followed.owner is not None and followed.owner != self.ray_job_id:
            self._workers.pop(followed.path, None)
            self._ignored.add(os.path.basename(followed.path))
        return lines


def _read_lines(followed: _Followed, final: bool) -> list[bytes]:
    """The complete lines added to ``followed``'s file since the last read (each ending in a
    newline); with ``final`` the unfinished rest too, given a newline."""
    try:
        with open(followed.path, "rb") as handle:
            handle.seek(followed.offset)
            data = handle.read()
    except OSError:
        data = b""
    followed.offset += len(data)
    data = followed.partial + data
    cut = data.rfind(b"\n") + 1
    followed.partial = data[cut:]
    lines = data[:cut].splitlines(keepends=True)
    if final and followed.partial:
        lines.append(followed.partial + b"\n")
        followed.partial = b""
    return lines


class LogPump:
    """Moves an instance's new log lines to where they are kept, every ``period_s``, on a thread.

    ``collect`` returns new bytes (an :class:`InstanceLogCollector`'s ``poll``); ``sink``
    receives them (appends them to the local copy and the stage); lines it refused (it raised)
    are offered again, first, on the next round, so a passing failure loses nothing.
    ``before_poll`` runs first on each round (the agent uses it to learn the Ray job id).
    :meth:`finish` stops the thread and moves the last lines, unfinished ones included.
    """

    def __init__(
        self,
        collect: Callable[..., bytes],
        sink: Callable[[bytes], None],
        *,
        period_s: float,
        before_poll: Callable[[], None] | None = None,
    ) -> None:
        self._collect = collect
        self._sink = sink
        self._before = before_poll
        self._period = period_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending = b""  # lines the sink refused last time: sent again, first, next time
        self._thread = threading.Thread(target=self._loop, name="shoal-log-pump", daemon=True)

    def start(self) -> LogPump:
        self._thread.start()
        return self

    def _round(self, final: bool) -> None:
        with self._lock:
            try:
                if self._before is not None:
                    self._before()
                self._pending += self._collect(final=final)
                if self._pending:
                    self._sink(self._pending)
                    self._pending = b""
            except Exception as exc:  # a failed round must not end the job; the next one retries
                print(f"shoal: moving log lines failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            self._round(final=False)

    def finish(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        self._round(final=True)


def append_local(path: Path, data: bytes) -> None:
    """Append ``data`` to the local file ``path`` (created if missing)."""
    with open(path, "ab") as handle:
        handle.write(data)

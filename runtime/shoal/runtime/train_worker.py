"""A training worker: a Ray actor on one node of the job, one per rank.

It reserves free ports on its node for the framework's rendezvous, then runs the estimator
backend's worker side (``worker_context`` around ``train``) on this rank's data shards. Its
stdout, stderr and ``logging`` output go to a per-rank log file on its node
(``<node temp>/shoal-train/<group>/rank<k>.log``) and to Ray's worker log.

The actor serves two calls at once: while ``run`` trains, the driver asks ``progress`` (how many
signs of progress the training thread gave: :func:`shoal.train.progress.report_progress` calls
and lines it wrote) and, for a rank taken as hung, ``diagnose`` (the last lines of its log and
the training thread's stack).

Runs on the job's nodes, placed by :class:`shoal.runtime.train_group.RayTrainWorkerGroup`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
import tempfile
import threading
import traceback
from pathlib import Path
from typing import Any

import cloudpickle

from shoal.ports import free_ports
from shoal.runtime.train_gather import RankGatherer, board_of
from shoal.train.gather import set_gatherer
from shoal.train.progress import report_progress, set_progress_sink
from shoal.train.ranks import RankInfo, WorkerSlot
from shoal.wire import decode_list

LOG_TAIL_LINES = 20
STACK_FRAMES = 12


class _TeeFile:
    """Writes to the log file and to the original stream; a line the training thread writes is a
    sign of progress (a line from another thread, a library's background logger, is not)."""

    def __init__(self, log: Any, original: Any, trainer: int) -> None:
        self._log = log
        self._original = original
        self._trainer = trainer

    def write(self, text: str) -> int:
        self._log.write(text)
        self._log.flush()
        if "\n" in text and threading.get_ident() == self._trainer:
            report_progress("output")
        with contextlib.suppress(Exception):
            self._original.write(text)
        return len(text)

    def flush(self) -> None:
        self._log.flush()
        with contextlib.suppress(Exception):
            self._original.flush()

    def isatty(self) -> bool:
        return False


class TrainWorker:
    """Ray actor body: ``describe`` once, ``start_on_rank0`` on rank 0 when the backend has
    one, then ``run`` once."""

    def __init__(
        self,
        group_id: str,
        rank: int,
        manifest_json: str,
        preload: tuple[str, ...] = (),
        preload_hidden: tuple[str, ...] = (),
    ) -> None:
        from shoal.plugin_manager import PluginManifest
        from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager
        from shoal.train.preload import import_in_background

        # while the driver readies the rendezvous
        self._preload = import_in_background(preload, preload_hidden)
        install_worker_plugin_manager(PluginManifest.from_json(manifest_json))
        self.rank = rank
        self.group_id = group_id
        folder = Path(os.environ.get("SHOAL_TRAIN_LOG_DIR") or tempfile.gettempdir())
        folder = folder / "shoal-train" / group_id
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["SHOAL_TRAIN_DIR"] = str(folder)  # this actor's process only: scratch of the group
        self.log_path = str(folder / f"rank{rank}.log")
        self._sockets: list[socket.socket] = []
        self._progress, self._what = 0, ""
        self._trainer: int | None = None
        self._backend: Any = None  # rank 0's backend after start_on_rank0

    def _report(self, what: str) -> None:
        self._progress += 1  # one writer: the training thread
        self._what = what

    def progress(self) -> tuple[int, str]:
        """Signs of progress so far and the last one (answered while ``run`` trains)."""
        return self._progress, self._what

    def diagnose(self) -> str:
        """The last lines of this rank's log and where its training thread is now."""
        parts = []
        with contextlib.suppress(OSError):
            lines = Path(self.log_path).read_text(encoding="utf-8", errors="replace").splitlines()
            tail = lines[-LOG_TAIL_LINES:]
            parts.append(f"last {len(tail)} line(s) of its log:" if tail else "its log is empty")
            parts.extend("  " + line for line in tail)
        frame = sys._current_frames().get(self._trainer) if self._trainer is not None else None
        if frame is not None:
            stack = traceback.format_stack(frame)[-STACK_FRAMES:]
            parts.append("where its training thread waits (innermost last):")
            parts.extend("  " + line.rstrip() for chunk in stack for line in chunk.splitlines())
        return "\n".join(parts)

    def describe(self, port_count: int) -> str:
        """This worker's :class:`~shoal.train.ranks.WorkerInfo` (node, address, pid, free ports
        on this node, log path), on the wire."""
        import ray

        from shoal.train.ranks import WorkerInfo

        ports, self._sockets = free_ports(port_count)
        return WorkerInfo(
            node_id=str(ray.get_runtime_context().get_node_id()),
            address=ray.util.get_node_ip_address(),
            pid=os.getpid(),
            ports=tuple(ports),
            log_path=self.log_path,
        ).to_json()

    def start_on_rank0(self, backend_blob: bytes, slots_json: str, setup_blob: bytes) -> bytes:
        """Rank 0, before any rank trains: the backend's ``start_on_rank0`` (XGBoost's tracker);
        the backend object is kept for :meth:`run`, which trains beside what it started."""
        self._preload.wait()  # the backend imports the framework
        backend = cloudpickle.loads(backend_blob)
        slots = decode_list(WorkerSlot, slots_json)
        setup = backend.start_on_rank0(slots, cloudpickle.loads(setup_blob))
        self._backend = backend
        return bytes(cloudpickle.dumps(setup))

    def run(self, backend_blob: bytes, rank_json: str, task: Any, setup_blob: bytes) -> bytes:
        """Release the reserved ports, then train this rank; return the pickled result. ``task``
        arrives as a Ray argument (its shards may hold object references)."""
        from shoal.train.ranks import set_current

        for sock in self._sockets:
            sock.close()
        self._sockets = []
        self._preload.wait()  # the backend may hold code that imports the framework
        backend = self._backend if self._backend is not None else cloudpickle.loads(backend_blob)
        rank = RankInfo.from_json(rank_json)
        setup = cloudpickle.loads(setup_blob)
        os.environ.update(rank.env())
        self._trainer = threading.get_ident()
        with open(self.log_path, "a", encoding="utf-8") as log:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = (
                _TeeFile(log, stdout, self._trainer),
                _TeeFile(log, stderr, self._trainer),
            )
            handler = logging.StreamHandler(sys.stderr)
            logging.getLogger().addHandler(handler)
            set_current(rank)
            set_progress_sink(self._report)
            board = functools.partial(board_of, self.group_id, rank.world_size)  # started if used
            set_gatherer(RankGatherer(board, rank.rank, rank.world_size))
            try:
                with backend.worker_context(rank, setup):
                    result = backend.train(rank, task, setup)
                return bytes(cloudpickle.dumps(result))
            except BaseException:
                log.write(traceback.format_exc())
                raise
            finally:
                set_progress_sink(None)
                set_gatherer(None)
                set_current(None)
                logging.getLogger().removeHandler(handler)
                sys.stdout, sys.stderr = stdout, stderr

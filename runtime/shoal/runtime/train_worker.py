"""A training worker: a Ray actor on one node of the job, one per rank.

It reserves free ports on its node for the framework's rendezvous, then runs the estimator
backend's worker side (``worker_context`` around ``train``) on this rank's data shards. Its
stdout, stderr and ``logging`` output go to a per-rank log file on its node
(``<node temp>/shoal-train/<group>/rank<k>.log``) and to Ray's worker log.

Runs on the job's nodes, placed by :class:`shoal.train.worker_group.WorkerGroup`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import cloudpickle

from shoal.runtime.ports import free_ports


class _TeeFile:
    """Writes to the log file and to the original stream."""

    def __init__(self, log: Any, original: Any) -> None:
        self._log = log
        self._original = original

    def write(self, text: str) -> int:
        self._log.write(text)
        self._log.flush()
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
    """Ray actor body: ``describe`` once, then ``run`` once."""

    def __init__(self, group_id: str, rank: int, manifest_hex: str) -> None:
        from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager

        install_worker_plugin_manager(cloudpickle.loads(bytes.fromhex(manifest_hex)))
        self.rank = rank
        folder = Path(os.environ.get("SHOAL_TRAIN_LOG_DIR") or tempfile.gettempdir())
        folder = folder / "shoal-train" / group_id
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["SHOAL_TRAIN_DIR"] = str(folder)  # this actor's process only: scratch of the group
        self.log_path = str(folder / f"rank{rank}.log")
        self._sockets: list[socket.socket] = []

    def describe(self, port_count: int) -> dict[str, Any]:
        """Node id, address, pid, free ports on this node and the log path."""
        import ray

        ports, self._sockets = free_ports(port_count)
        return {
            "node_id": str(ray.get_runtime_context().get_node_id()),
            "address": ray.util.get_node_ip_address(),
            "pid": os.getpid(),
            "ports": ports,
            "log_path": self.log_path,
        }

    def run(self, backend_blob: bytes, rank_blob: bytes, task_blob: bytes, setup_blob: bytes) -> bytes:
        """Release the reserved ports, then train this rank; return the pickled result."""
        from shoal.train.ranks import set_current

        for sock in self._sockets:
            sock.close()
        self._sockets = []
        backend = cloudpickle.loads(backend_blob)
        rank = cloudpickle.loads(rank_blob)
        task = cloudpickle.loads(task_blob)
        setup = cloudpickle.loads(setup_blob)
        os.environ.update(rank.env())
        with open(self.log_path, "a", encoding="utf-8") as log:
            stdout, stderr = sys.stdout, sys.stderr
            sys.stdout, sys.stderr = _TeeFile(log, stdout), _TeeFile(log, stderr)
            handler = logging.StreamHandler(sys.stderr)
            logging.getLogger().addHandler(handler)
            set_current(rank)
            try:
                with backend.worker_context(rank, setup):
                    result = backend.train(rank, task, setup)
                return bytes(cloudpickle.dumps(result))
            except BaseException:
                log.write(traceback.format_exc())
                raise
            finally:
                set_current(None)
                logging.getLogger().removeHandler(handler)
                sys.stdout, sys.stderr = stdout, stderr

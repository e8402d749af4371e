"""A partition worker: a Ray actor on one node of a DPF run that runs the user's function on
one partition at a time.

For each attempt it captures stdout, stderr and ``logging`` output, calls
``func(data_connector, context)``, appends the output (and the traceback, if any) to the
partition's ``train.log`` on the stage, runs the partition lifecycle hooks, and reports the
outcome to the scheduler.

Runs on the nodes of the run's job, one actor per worker slot.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import time
import traceback
from typing import Any

import cloudpickle

from shoal.stages import Stage


class _Tee(io.TextIOBase):
    """Writes to the capture buffer and to the original stream."""

    def __init__(self, buffer: io.StringIO, original: Any) -> None:
        self._buffer = buffer
        self._original = original

    def write(self, text: str) -> int:
        self._buffer.write(text)
        with contextlib.suppress(Exception):
            self._original.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._original.flush()


class PartitionWorker:
    """Ray actor body (``max_concurrency=1``: one partition at a time)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager

        install_worker_plugin_manager(cloudpickle.loads(bytes.fromhex(spec["plugin_manifest"])))
        self.stage = Stage(spec["stage_name"], spec["stage_url"])
        self.run_id = spec["run_id"]
        self.func = cloudpickle.loads(bytes.fromhex(spec["function"]))
        self.session_host = spec.get("session_host")

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())

    def _session_runner(self) -> Any:
        if self.session_host is None:
            return None
        import ray

        host = ray.get_actor(self.session_host, namespace="shoal")

        def run(fn: Any) -> Any:
            return ray.get(host.call.remote(cloudpickle.dumps(fn)))

        return run

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        from shoal import hooks
        from shoal.contributions import PartitionInfo
        from shoal.data import DataConnector
        from shoal.dpf import layout
        from shoal.dpf.context import PartitionContext

        partition_id = task["partition_id"]
        info = PartitionInfo(
            run_id=self.run_id,
            partition_id=partition_id,
            attempt=task["attempt"],
            stage_path_prefix=f"@{self.stage.name}/{layout.partition_dir(self.run_id, partition_id)}",
        )
        buffer = io.StringIO()
        handler = logging.StreamHandler(buffer)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        started = time.time()
        status, error = "DONE", None
        old_out, old_err = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = _Tee(buffer, old_out), _Tee(buffer, old_err)
        try:
            hooks.notify_before_partition(info)
            connector = DataConnector.from_sources(task["files"])
            context = PartitionContext(self.stage, self.run_id, partition_id, self._session_runner())
            self.func(connector, context)
        except BaseException as exc:  # the user's error; KeyboardInterrupt and SystemExit included
            status, error = "FAILED", f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=buffer)
            hooks.notify_partition_error(info, exc)
        finally:
            sys.stdout, sys.stderr = old_out, old_err
            root.removeHandler(handler)
        hooks.notify_after_partition(info, status)
        ended = time.time()
        self._append_log(partition_id, task["attempt"], buffer.getvalue(), status)
        return {
            "status": status,
            "error": error,
            "started_at": started,
            "ended_at": ended,
            "node_id": self.node_id(),
        }

    def _append_log(self, partition_id: str, attempt: int, text: str, status: str) -> None:
        from shoal.dpf import layout

        path = f"{layout.partition_dir(self.run_id, partition_id)}/{layout.LOG_FILE}"
        previous = self.stage.read_text(path) if attempt > 1 and self.stage.exists(path) else ""
        header = f"===== partition {partition_id} attempt {attempt}: {status} =====\n"
        self.stage.write_text(
            path, previous + header + text + ("" if text.endswith("\n") or not text else "\n")
        )


class SessionHost:
    """Holds the run's session (a Snowpark session or the DuckDB warehouse) for ``with_session``.

    Runs in one Ray actor of the run; calls are serialised, as one session is not thread-safe.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._session: Any = None
        self._journal: list[bytes] = []

    def _open(self) -> Any:
        if self._session is None:
            if self.kind == "local_testing":
                from snowflake.snowpark import Session

                self._session = Session.builder.config("local_testing", True).create()
            else:
                from snowflake.snowpark import Session

                self._session = Session.builder.getOrCreate()
        return self._session

    def call(self, fn_blob: bytes) -> Any:
        fn = cloudpickle.loads(fn_blob)
        if self.kind == "warehouse":
            # open per call: DuckDB allows one writer process, and others may read the warehouse meanwhile
            from shoal.data.warehouse import connect_warehouse

            with connect_warehouse() as connection:
                return fn(connection)
        result = fn(self._open())
        if self.kind == "local_testing":
            # a local_testing session lives in the caller's memory: DPFRun.wait() replays these there
            self._journal.append(fn_blob)
        return result

    def journal(self) -> list[bytes]:
        return list(self._journal)

    def close(self) -> None:
        self._session = None

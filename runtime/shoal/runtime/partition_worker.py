"""Partition workers: the code that runs a batch of partitions inside a Ray worker process.

:func:`run_batch` is the body of the Ray task the scheduler starts per batch (a streaming
generator: it reports the :class:`~shoal.dpf.specs.TaskOutcome` of finished partitions every
tenth of a second, so the scheduler knows which partitions a lost worker had finished).
For each attempt it captures stdout, stderr and ``logging`` output, calls
``func(data_connector, context)``, writes the output (and the traceback, if any) after the
partition's earlier attempts into the attempt's ``train.log``, commits the attempt's files
(:mod:`shoal.dpf.attempts`) and runs the partition lifecycle hooks.

What a run needs once per process (the user's function, the plugin manager, the stage, open
Arrow files) is kept in :data:`_RUNS`, so a worker process that runs many batches of the same
run loads them once.

Runs on the nodes of the run's job, in Ray worker processes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import threading
import time
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import cloudpickle

from shoal.dpf.specs import BatchSpec, RunSpec, TaskOutcome, TaskSpec
from shoal.stages import Stage

OPEN_FILES = 8
#: A worker reports the partitions it finished at least this often.
REPORT_EVERY_S = 0.1


class _Capture(io.TextIOBase):
    """Collects what the partition prints, and passes it on to the original stream."""

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


class _RunRuntime:
    """What one worker process keeps of one run."""

    def __init__(self, spec: RunSpec) -> None:
        from shoal.data import job_session
        from shoal.dpf import layout
        from shoal.plugin_manager import PluginManifest
        from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager

        install_worker_plugin_manager(PluginManifest.from_json(spec.plugin_manifest))
        job_session.install()  # a warm executor is no job's worker: its setup hook did not run
        self.spec = spec
        self.stage = Stage(spec.stage_name, spec.stage_url)
        self.func = cloudpickle.loads(
            self.stage.read_bytes(layout.internal(spec.run_id, layout.FUNCTION_FILE))
        )
        self._files: OrderedDict[str, Any] = OrderedDict()
        self._session_host: Any = None
        self._arrow_source: Any = None
        import ray

        self.node_id = str(ray.get_runtime_context().get_node_id())

    def arrow_file(self, location: str) -> Any:
        """An open Arrow IPC file reader for ``@stage/path``, memory-mapped on local stages."""
        import pyarrow as pa

        reader = self._files.get(location)
        if reader is None:
            from shoal.stages import resolve_location

            stage, path = resolve_location(location)
            local = stage.backend.local_path(path)
            source = pa.memory_map(local) if local else stage.open(path, "rb")
            reader = pa.ipc.open_file(source)
            self._files[location] = reader
            while len(self._files) > OPEN_FILES:
                self._files.popitem(last=False)
        else:
            self._files.move_to_end(location)
        return reader

    def connector(self, task: TaskSpec) -> Any:
        from shoal.data import DataConnector

        if task.record_batches is not None:
            import pyarrow as pa

            first, count = task.record_batches
            reader = self.arrow_file(task.files[0])
            table = pa.Table.from_batches([reader.get_batch(i) for i in range(first, first + count)])
            if self._arrow_source is None:  # looked up once: the hook answers the same for every table
                from shoal import hooks

                self._arrow_source = hooks.data_source_for(table)
            return DataConnector(self._arrow_source.factory(table))
        return DataConnector.from_sources(list(task.files))

    def session_runner(self) -> Any:
        name = self.spec.session_host
        if name is None:
            return None
        import ray

        def run(fn: Any) -> Any:
            if self._session_host is None:
                self._session_host = session_host(self.spec)
            return ray.get(self._session_host.call.remote(cloudpickle.dumps(fn)))

        return run


_RUNS: OrderedDict[str, _RunRuntime] = OrderedDict()
_RUNS_LOCK = threading.Lock()


def _runtime(spec: RunSpec) -> _RunRuntime:
    key = f"{spec.stage_url}|{spec.run_id}|{spec.job_id}"
    with _RUNS_LOCK:
        runtime = _RUNS.get(key)
        if runtime is None:
            runtime = _RunRuntime(spec)
            _RUNS[key] = runtime
            while len(_RUNS) > 4:
                _RUNS.popitem(last=False)
        return runtime


def run_batch(spec_json: str, batch_json: str) -> Iterator[str]:
    """Run every partition of a batch, one after the other; yield their outcomes as a JSON list,
    every :data:`REPORT_EVERY_S` seconds and at the end (a lost worker's unreported partitions
    run again; their commit replaces what they left)."""
    runtime = _runtime(RunSpec.from_json(spec_json))
    batch = BatchSpec.from_json(batch_json)
    pending: list[str] = []
    last_report = time.monotonic()
    marker = running_marker(runtime.stage, runtime.spec.run_id, batch.batch_id)
    for task in batch.tasks:
        if marker is not None:
            marker.write(f"{task.index}\n")
            marker.flush()
        started = time.time()
        try:
            outcome = run_partition(runtime, task)
        except Exception as exc:  # shoal's own handling failed (writing the log, say): this partition only
            traceback.print_exc()
            error = (
                f"shoal could not finish partition {task.partition_id!r} (attempt {task.attempt}): "
                f"{type(exc).__name__}: {exc}; its log may be missing, the worker's own log on node "
                f"{runtime.node_id} has the traceback"
            )
            outcome = TaskOutcome(
                task.index, task.attempt, "FAILED", error, started, time.time(), runtime.node_id
            )
        pending.append(outcome.to_json())
        if time.monotonic() - last_report >= REPORT_EVERY_S:
            yield "[" + ",".join(pending) + "]"
            pending, last_report = [], time.monotonic()
    if pending:
        yield "[" + ",".join(pending) + "]"
    if marker is not None:
        marker.close()
        with contextlib.suppress(OSError):
            os.unlink(marker.name)


def _marker_path(stage: Stage, run_id: str, batch_id: int) -> str | None:
    """Where a batch notes the partition it is running (local-folder stages only)."""
    from shoal.dpf import layout

    folder = stage.backend.local_path(layout.internal(run_id, "workers"))
    return None if folder is None else os.path.join(folder, f"{batch_id}.running")


def running_marker(stage: Stage, run_id: str, batch_id: int) -> Any:
    """On local-folder stages, a file where a batch notes each partition as it starts: if the
    worker dies, the scheduler reads which partition it was running (:func:`read_running`)."""
    path = _marker_path(stage, run_id, batch_id)
    if path is None:
        return None
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return open(path, "w", encoding="ascii")


def read_running(stage: Stage, run_id: str, batch_id: int) -> int | None:
    """The partition a dead batch was running, when its stage kept the note."""
    path = _marker_path(stage, run_id, batch_id)
    if path is None:
        return None
    try:
        with open(path, encoding="ascii") as handle:
            lines = [line for line in handle.read().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    return int(lines[-1]) if lines else None


def run_partition(runtime: _RunRuntime, task: TaskSpec) -> TaskOutcome:
    """One attempt of one partition, its files committed when it ends."""
    from shoal import hooks
    from shoal.contributions import PartitionInfo
    from shoal.dpf import layout
    from shoal.dpf.attempts import AttemptFiles
    from shoal.dpf.context import PartitionContext
    from shoal.errors import PermanentPartitionError

    spec = runtime.spec
    files = AttemptFiles(runtime.stage, spec.run_id, task.folder, task.index, task.attempt)
    info = PartitionInfo(
        run_id=spec.run_id,
        partition_id=task.partition_id,
        attempt=task.attempt,
        stage_path_prefix=f"@{runtime.stage.name}/{layout.artifact_dir(spec.run_id, task.folder)}",
    )
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    started = time.time()
    status, error, retryable = "DONE", None, True
    old_out, old_err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Capture(buffer, old_out), _Capture(buffer, old_err)
    try:
        hooks.notify_before_partition(info)
        context = PartitionContext(
            runtime.stage, spec.run_id, task.partition_id, runtime.session_runner(), files, task.folder
        )
        runtime.func(runtime.connector(task), context)
    except BaseException as exc:  # the user's error; KeyboardInterrupt and SystemExit included
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
        retryable = not isinstance(exc, PermanentPartitionError)
        traceback.print_exc(file=buffer)
        hooks.notify_partition_error(info, exc)
    finally:
        sys.stdout, sys.stderr = old_out, old_err
        root.removeHandler(handler)
    try:
        hooks.notify_after_partition(info, status)
    except Exception as exc:  # a plugin's after_partition failed: the partition did not finish cleanly
        if status == "DONE":
            status, error = "FAILED", f"after_partition hook failed: {type(exc).__name__}: {exc}"
        buffer.write(traceback.format_exc())
    ended = time.time()
    text = buffer.getvalue()
    header = f"===== partition {task.partition_id} attempt {task.attempt}: {status} =====\n"
    log_text = files.previous_log() + header + text + ("" if text.endswith("\n") or not text else "\n")
    files.write_bytes(layout.LOG_FILE, log_text.encode("utf-8"))
    files.commit()
    return TaskOutcome(task.index, task.attempt, status, error, started, ended, runtime.node_id, retryable)  # type: ignore[arg-type]


class PartitionExecutor:
    """A long-lived Ray actor that runs batches, one at a time, for any run on its node: the pool
    service keeps them warm between runs (:meth:`shoal.runtime.pool_service.PoolService.executors_for`).

    A run's function, plugins and files are loaded per run (:data:`_RUNS`); the job's environment
    variables and payload folder are applied for each batch and taken back after it. What stays
    between runs is the process and the modules it imported."""

    def run_batch(self, spec_json: str, batch_json: str, env_json: str) -> Iterator[str]:
        env = json.loads(env_json)
        saved = {k: os.environ.get(k) for k in env.get("vars", {})}
        os.environ.update(env.get("vars", {}))
        extra_path = env.get("path")
        if extra_path and extra_path not in sys.path:
            sys.path.insert(0, extra_path)
        try:
            yield from run_batch(spec_json, batch_json)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if extra_path and extra_path in sys.path:
                sys.path.remove(extra_path)

    def node_id(self) -> str:
        import ray

        return str(ray.get_runtime_context().get_node_id())


def session_host(spec: RunSpec, *, create: bool = True) -> Any:
    """The run's session host actor, started by the first partition that calls ``with_session``
    (most runs never do). It lives on the scheduler's node, which outlives every partition, and
    the scheduler removes it when the run ends. None when it does not exist and ``create=False``."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    assert spec.session_host is not None
    assert spec.session_kind is not None
    if not create:
        try:
            return ray.get_actor(spec.session_host, namespace="shoal")
        except ValueError:
            return None
    host_cls: Any = ray.remote(SessionHost)
    strategy = (
        NodeAffinitySchedulingStrategy(spec.scheduler_node, soft=False) if spec.scheduler_node else "DEFAULT"
    )
    return host_cls.options(
        name=spec.session_host,
        namespace="shoal",
        get_if_exists=True,
        lifetime="detached",
        num_cpus=0,
        max_concurrency=1,
        scheduling_strategy=strategy,
    ).remote(spec.session_kind)


def probe() -> str:
    """A no-op task: it completes only where the node's raylet is alive."""
    import ray

    return str(ray.get_runtime_context().get_node_id())


class SessionHost:
    """Holds the run's session (a Snowpark session or the DuckDB warehouse) for ``with_session``.

    Runs in one Ray actor of the run, on the scheduler's node; calls are serialised, as one
    session is not thread-safe.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._session: Any = None
        self._journal: list[bytes] = []

    def _open(self) -> Any:
        if self._session is None:
            from snowflake.snowpark import Session

            if self.kind == "local_testing":
                self._session = Session.builder.config("local_testing", True).create()
            elif self.kind == "embedded":
                from shoal.data.snowpark_service import embedded_session

                self._session = embedded_session()
            else:
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

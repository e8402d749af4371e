"""``DPF``: run a function once per partition of a table, query, DataFrame or set of stage files.

.. code-block:: python

    from shoal.dpf import DPF

    def train(data, context):
        frame = data.to_pandas()
        context.upload_to_stage(fit(frame), "model.pkl")

    run = DPF(train, "models").run(partition_by="STORE", dataframe=sales, run_id="v1")
    run.wait()

Everything that can be checked (options, run id, existing artifacts, the input's columns and
rows) is checked before a node is reserved; a failure during partitioning leaves nothing on the
stage. Runs on the driver.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any

from shoal.dpf import checks, layout, partitioning
from shoal.dpf.definition import DEFINITION_FILE, ManyModelSection, RunDefinition
from shoal.dpf.entities import ExecutionOptions, RunStatus
from shoal.dpf.launch import launch
from shoal.dpf.partitioners import Partitioner
from shoal.dpf.run import DPFRun
from shoal.dpf.specs import PartitionInput
from shoal.errors import ArtifactsExistError, ConfigError, RecordError, RunConflictError, StageNotFoundError
from shoal.jobs.context import JobContext
from shoal.plugin_manager import get_plugin_manager
from shoal.stages import Stage, create_stage, get_stage

ON_EXISTING = ("error", "overwrite")


def _stage(name: str) -> Stage:
    try:
        return get_stage(name)
    except StageNotFoundError:
        return create_stage(name, exist_ok=True)


class DPF:
    """A distributed partition function: ``func(data_connector, context)`` per partition.

    Subclasses (many-model training and inference) wrap the user's function in a callable with a
    ``user_function`` attribute, set :attr:`run_class`, and fill the run definition's many-model
    slot with :meth:`_many_model_section`."""

    #: what ``run`` and ``run_from_stage`` return
    run_class: type[DPFRun] = DPFRun

    def __init__(
        self, func: Callable[[Any, Any], Any] | str, stage_name: str, *, compute_pool: str | None = None
    ) -> None:
        if isinstance(func, str):
            from shoal import hooks

            func = hooks.get_partition_function(func).function
        if not callable(func):
            raise TypeError(f"DPF needs a function func(data_connector, context), got {type(func).__name__}")
        if not hasattr(func, "user_function"):  # wrappers (many-model runs) check their own
            checks.check_signature(func, 2, "func(data_connector, context)")
        self.func = func
        self.stage_name = stage_name
        self.compute_pool = compute_pool

    # -- public ----------------------------------------------------------------------------

    def run(
        self,
        *,
        partition_by: str | Partitioner,
        snowpark_dataframe: Any = None,
        dataframe: Any = None,
        run_id: str,
        on_existing_artifacts: str = "error",
        execution_options: ExecutionOptions | None = None,
    ) -> DPFRun:
        """SQL mode: one partition per distinct value of ``partition_by``."""
        if (snowpark_dataframe is None) == (dataframe is None):
            raise ValueError("pass exactly one of snowpark_dataframe= or dataframe=")
        if not isinstance(partition_by, Partitioner) and (
            not isinstance(partition_by, str) or not partition_by
        ):
            raise ConfigError(
                f"partition_by must be a column name or a Partitioner, got {partition_by!r}; e.g. "
                f"partition_by='STORE'"
            )
        source = snowpark_dataframe if snowpark_dataframe is not None else dataframe
        options, blob, pool = self._check(run_id, on_existing_artifacts, execution_options)
        session_kind, caller_session = _session_of(source)
        stage = _stage(self.stage_name)
        with _claimed(stage, run_id, on_existing_artifacts) as folder:
            parts = self._partition_sql(stage, run_id, partition_by, source, folder.clear)
            return self._start(
                stage,
                run_id,
                "sql",
                parts,
                options,
                session_kind,
                caller_session,
                {"partition_by": partition_by if isinstance(partition_by, str) else partition_by.describe()},
                blob,
                pool,
                folder,
            )

    def run_from_stage(
        self,
        *,
        stage_location: str,
        run_id: str,
        file_pattern: str = "*.parquet",
        partition_ids: list[str] | None = None,
        on_existing_artifacts: str = "error",
        execution_options: ExecutionOptions | None = None,
    ) -> DPFRun:
        """Stage mode: one partition per file; its id is the file's path relative to the stage root."""
        from shoal.stages import resolve_location

        options, blob, pool = self._check(run_id, on_existing_artifacts, execution_options)
        source_stage, inner = resolve_location(stage_location)
        parts = partitioning.partition_stage_files(source_stage, inner, file_pattern, partition_ids)
        layout.check_partition_ids([p.partition_id for p in parts])
        stage = _stage(self.stage_name)
        with _claimed(stage, run_id, on_existing_artifacts) as folder:
            return self._start(
                stage,
                run_id,
                "stage",
                parts,
                options,
                _session_of(None)[0],  # the reference hands a Snowpark session here too
                None,
                {"stage_location": stage_location, "file_pattern": file_pattern},
                blob,
                pool,
                folder,
            )

    def _many_model_section(self) -> ManyModelSection | None:
        """The many-model classes' part of the run's definition (``_shoal/run.json``); none for
        a plain DPF."""
        return None

    # -- steps -----------------------------------------------------------------------------

    def _check(
        self, run_id: str, on_existing: str, options: ExecutionOptions | None
    ) -> tuple[ExecutionOptions, bytes, str | None]:
        """Everything about a run that can be checked without its input: options, run id, the
        function (pickled, as workers will load it) and the pool. Nothing is written."""
        layout.check_run_id(run_id)
        if on_existing not in ON_EXISTING:
            raise ConfigError(f"on_existing_artifacts must be 'error' or 'overwrite', got {on_existing!r}")
        if options is not None and not isinstance(options, ExecutionOptions):
            raise TypeError(f"execution_options must be an ExecutionOptions, got {type(options).__name__}")
        user_function = getattr(self.func, "user_function", self.func)
        blob = checks.pickled_function(self.func, user_function)
        pool = None
        if not JobContext.current().in_payload:
            from shoal.plugin_reach import check_plugins_reach_nodes
            from shoal.pools import records
            from shoal.pools.default import default_compute_pool

            pool = self.compute_pool or default_compute_pool()
            records.load(pool)  # an unknown pool fails here, not after partitioning
            check_plugins_reach_nodes(pool)  # and a plugin its nodes cannot import
        return options or ExecutionOptions(), blob, pool

    def _partition_sql(
        self, stage: Stage, run_id: str, by: Any, source: Any, before_write: Callable[[], None]
    ) -> list[PartitionInput]:
        """Partition ``source``; ``before_write`` runs after every check, before the first write."""
        if type(source).__module__.split(".")[0] == "duckdb" and hasattr(source, "write_parquet"):
            return self._split(stage, run_id, by, source, before_write)
        if isinstance(by, str) and _session_of(source)[0] == "snowflake":
            from shoal.dpf.snowflake_partitioning import partition_with_snowflake

            return partition_with_snowflake(stage, run_id, by, source, before_write)
        duck = _duckdb_query_of(source)
        if duck is not None:
            connection, query = duck
            try:
                return self._split(stage, run_id, by, connection.sql(query), before_write)
            finally:
                connection.close()
        from shoal.data import DataConnector

        connector = source if isinstance(source, DataConnector) else DataConnector.from_dataframe(source)
        table = connector.to_arrow()
        if isinstance(by, str) and type(source).__module__.startswith("snowflake.snowpark"):
            from shoal.data.snowpark_sources import snowflake_spelling

            # the data keeps Snowflake's names ('"store"'); partition_by may name it as SQL would
            by = snowflake_spelling(by, table.column_names) or by
        if isinstance(by, Partitioner):
            import duckdb

            connection = duckdb.connect()
            try:
                return self._split(stage, run_id, by, connection.from_arrow(table), before_write)
            finally:
                connection.close()
        return partitioning.partition_arrow(stage, run_id, by, table, before_write)

    @staticmethod
    def _split(
        stage: Stage, run_id: str, by: Any, relation: Any, before_write: Callable[[], None]
    ) -> list[PartitionInput]:
        if isinstance(by, str):
            return partitioning.partition_with_duckdb(stage, run_id, by, relation, before_write=before_write)
        return partitioning.partition_with_partitioner(stage, run_id, by, relation, before_write)

    def _start(
        self,
        stage: Stage,
        run_id: str,
        mode: str,
        parts: list[PartitionInput],
        options: ExecutionOptions,
        session_kind: str | None,
        caller_session: Any,
        extra: dict[str, Any],
        function_blob: bytes,
        pool: str | None,
        folder: _RunFolder,
    ) -> DPFRun:
        from shoal.dpf.specs import RunSpec

        user_function = getattr(self.func, "user_function", self.func)
        parts = layout.with_folders(parts)
        folder.clear()
        layout.write_json(stage, layout.internal(run_id, "partitions.json"), [p.to_dict() for p in parts])
        stage.write_bytes(layout.internal(run_id, layout.FUNCTION_FILE), function_blob)
        spec = RunSpec(
            run_id=run_id,
            stage_name=stage.name,
            stage_url=stage.url,
            mode=mode,
            options=options,
            plugin_manifest=get_plugin_manager().manifest().to_json(),
            session_kind=session_kind,
            session_host=f"shoal-session-{stage.name}-{run_id}" if session_kind else None,
        )
        definition = RunDefinition(
            run_id=run_id,
            mode="sql" if mode == "sql" else "stage",
            created=time.time(),
            compute_pool=pool,
            function=getattr(user_function, "__qualname__", repr(user_function)),
            num_partitions=len(parts),
            spec=spec,
            many_model=self._many_model_section(),
            **extra,
        )
        launch(stage, definition)
        return self.run_class(stage, run_id, caller_session=caller_session)


class _RunFolder:
    """The run's folder on its stage while a run is being started (driver).

    ``overwrite`` removes an earlier run's files only in :meth:`clear`, which partitioning calls
    after every check and before its first write: a refused run leaves an earlier run whole. The
    folder is this start's own after that (or when it was empty), and only then removed when the
    start fails."""

    def __init__(self, stage: Stage, run_id: str) -> None:
        self.stage = stage
        self.run_id = run_id
        self.earlier = bool(stage.list(layout.run_dir(run_id)))
        self.owned = not self.earlier

    def clear(self) -> None:
        if not self.owned:
            self.stage.remove(layout.run_dir(self.run_id))
            self.owned = True


@contextlib.contextmanager
def _claimed(stage: Stage, run_id: str, on_existing: str) -> Iterator[_RunFolder]:
    """Hold the run id while a run starts: one start at a time per stage and run id on this
    machine (a file lock in the workspace), refusing an id whose run is live or whose folder holds
    artifacts (unless ``overwrite``). A start that fails removes what it wrote, and only that."""
    from filelock import FileLock

    from shoal.workspace import workspace_dir

    digest = hashlib.sha256(f"{stage.url}\0{run_id}".encode()).hexdigest()[:24]
    lock = FileLock(str(workspace_dir("locks") / f"dpf-{digest}.lock"))
    with lock:
        if stage.exists(layout.internal(run_id, DEFINITION_FILE)):
            existing = DPFRun(stage, run_id)
            try:
                live = existing.status == RunStatus.IN_PROGRESS and existing.is_driver_alive()
            except RecordError:
                live = False  # an unreadable earlier run is not running; overwrite may replace it
            if live:
                raise RunConflictError(
                    f"DPF run {run_id!r} is in progress on @{stage.name}; two runs cannot share a run_id. "
                    f"Wait for it, cancel it (DPFRun.restore_from({run_id!r}, {stage.name!r}).cancel()) "
                    f"or pick another run_id."
                )
        folder = _RunFolder(stage, run_id)
        if folder.earlier and on_existing == "error":
            raise ArtifactsExistError(
                f"@{stage.name}/{run_id}/ already holds artifacts; pass "
                f"on_existing_artifacts='overwrite' to replace them, or choose another run_id",
                stage=stage.name,
                run_id=run_id,
            )
        try:
            yield folder
        except BaseException:
            if folder.owned:
                stage.remove(layout.run_dir(run_id), missing_ok=True)
            raise


def _session_of(source: Any) -> tuple[str, Any]:
    """Which session ``with_session`` uses for this input: ``(kind, caller's session or None)``."""
    if type(source).__module__.startswith("snowflake.snowpark"):
        from shoal.data.snowpark_sources import session_kind

        session = getattr(source, "session", None) or getattr(source, "_session", None)
        kind = session_kind(session)
        return kind, session if kind == "local_testing" else None
    from shoal.compat import installed_layers

    # reference code calls session.sql(...) in with_session: under the compatibility layer it
    # gets a Snowpark session of the workspace's service, else the DuckDB warehouse
    return ("embedded" if "snowflake" in installed_layers() else "warehouse"), None


def _duckdb_query_of(source: Any) -> tuple[Any, str] | None:
    """A DuckDB connection and query when ``source`` is a DataConnector over a DuckDB query."""
    from shoal.data import DataConnector

    if not isinstance(source, DataConnector):
        return None
    inner = getattr(source, "source", None) or getattr(source, "_source", None)
    database = getattr(inner, "database", None)
    query = getattr(inner, "query", None)
    if not database or not query:
        return None
    import duckdb

    return duckdb.connect(str(database), read_only=True), str(query)

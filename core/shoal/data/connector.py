"""``DataConnector``: one way in for tabular data, and every way out (pandas, Arrow, exact-size
batches, torch, Ray).

A connector wraps one :class:`~shoal.data.DataSource`. ``from_dataframe`` picks the source with
the ``shoal_data_sources`` hook (``shoal.hooks.data_source_for``), so plugins add input kinds;
``from_sql``, ``from_sources``/``from_stage`` and ``from_ray_dataset`` build the built-in query,
file and Ray sources directly. Every output is computed from the source's stream of Arrow record
batches, so outputs that can stream (``to_batches``, ``to_torch_dataset``, ``to_pandas(limit=)``)
do.

A connector pickles as its source (see ``shoal.data.source`` for what each source ships), so it
can be passed to Ray tasks, DPF partition functions and DataLoader workers.

Runs on the driver and on workers.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shoal import hooks
from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS
from shoal.data.batches import check_batch_size, limit_rows, rebatch, shuffle_windows
from shoal.data.source import DataSource
from shoal.errors import ConfigError, PluginError
from shoal.train.progress import report_progress

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import torch.utils.data

#: Keyword arguments kept by the connector itself (the reference's ``expand_dims``), not given to sources.
CONNECTOR_OPTIONS = frozenset({"expand_dims"})

#: Rows a shuffle mixes at once, at least (``to_batches(shuffle=True)``): ten batches or this many.
SHUFFLE_WINDOW_ROWS = 10_000


def _reported(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """``batches``, each a sign of progress when read in a training worker (see shoal.train.progress)."""
    for batch in batches:
        report_progress("batch read")
        yield batch


def _is_duckdb_connection(obj: object) -> bool:
    from shoal.data.frame_sources import is_instance_by_name

    return is_instance_by_name(obj, "_duckdb", "DuckDBPyConnection") or is_instance_by_name(
        obj, "duckdb", "DuckDBPyConnection"
    )


def _is_snowpark_session(obj: object) -> bool:
    from shoal.data.frame_sources import is_instance_by_name

    return is_instance_by_name(obj, "snowflake.snowpark", "Session")


def _is_session(obj: object) -> bool:
    return _is_duckdb_connection(obj) or _is_snowpark_session(obj)


class DataConnector:
    """Reads one data source; converts it to pandas, Arrow, record batches, torch or Ray.

    Build one with a ``from_*`` classmethod; ``DataConnector(source)`` takes any
    :class:`~shoal.data.DataSource`. ``expand_dims`` (default True) is the default of
    :meth:`to_torch_dataset`'s ``expand_dims``, as in the reference product.
    """

    def __init__(self, source: DataSource, **kwargs: Any) -> None:
        if not isinstance(source, DataSource):
            raise TypeError(
                f"DataConnector needs a shoal.data.DataSource, got {type(source).__module__}."
                f"{type(source).__qualname__}; build one with DataConnector.from_dataframe(...), "
                f"from_sql(...) or from_sources(...)."
            )
        unknown = sorted(set(kwargs) - CONNECTOR_OPTIONS)
        if unknown:
            raise TypeError(f"DataConnector got unexpected keyword arguments {unknown}")
        self._source = source
        self._kwargs = kwargs

    # -- construction ---------------------------------------------------------------------

    @classmethod
    def from_dataframe(cls, df: Any, **options: Any) -> DataConnector:
        """A connector over an in-memory or lazy frame, chosen by the ``shoal_data_sources`` hook.

        Built in: pandas and Polars DataFrames (and Polars LazyFrames), ``pyarrow.Table``,
        ``RecordBatch``, a list of ``RecordBatch``, ``pyarrow.dataset.Dataset``, DuckDB relations,
        Snowpark DataFrames (``local_testing`` sessions are materialized; a real session's frame
        must be one query without post actions) and Ray datasets. ``options`` go to the source's
        factory (e.g. ``preserve_index=True`` for pandas, ``columns=[...]`` for an Arrow dataset).
        An unsupported type is a :class:`~shoal.errors.ConfigError` naming it and the installed sources.
        """
        connector_options = {k: options.pop(k) for k in CONNECTOR_OPTIONS if k in options}
        if isinstance(df, DataConnector) and not options and not connector_options:
            return df
        if isinstance(df, DataSource):
            return cls(df, **options, **connector_options)
        spec = hooks.data_source_for(df)
        source = spec.factory(df, **options)
        if not isinstance(source, DataSource):
            raise PluginError(
                f"Data source {spec.name!r} returned {type(source).__name__} for a "
                f"{type(df).__qualname__}; its factory must return a shoal.data.DataSource."
            )
        return cls(source, **connector_options)

    @classmethod
    def from_sql(cls, query: str, session: Any = None, **kwargs: Any) -> DataConnector:
        """A connector over the rows of one SQL query.

        * ``session=None``: the embedded DuckDB warehouse (``$SHOAL_HOME/warehouse.duckdb``), read
          read-only; the connector keeps the query and re-runs it wherever it is read.
        * a ``duckdb.DuckDBPyConnection``: on a database file, as above on that file; in memory (or
          when the query needs a temporary object of that connection), read through the connection,
          and shipped to workers as its rows.
        * a Snowpark ``Session``: ``session.sql(query)``, as :meth:`from_dataframe`.
        """
        from shoal.data.duckdb_sources import DuckDBQuerySource, query_source

        if session is None:
            from shoal.data.warehouse import connect_warehouse, warehouse_path

            if not warehouse_path().exists():
                connect_warehouse().close()
            return cls(DuckDBQuerySource(warehouse_path(), query), **kwargs)
        if _is_duckdb_connection(session):
            return cls(query_source(session, query), **kwargs)
        if _is_snowpark_session(session):
            from shoal.data.snowpark_sources import is_local_testing

            if is_local_testing(session):
                raise ConfigError(
                    "Snowpark local_testing sessions cannot run SQL (Session.sql is not supported there); "
                    "pass a DataFrame (session.table(name), session.create_dataframe(...)) to "
                    "DataConnector.from_dataframe instead."
                )
            return cls.from_dataframe(session.sql(query), **kwargs)
        raise ConfigError(
            f"from_sql: session must be None (the embedded DuckDB warehouse), a duckdb connection or a "
            f"Snowpark Session; got {type(session).__module__}.{type(session).__qualname__}."
        )

    @classmethod
    def from_ray_dataset(cls, ray_ds: Any, **kwargs: Any) -> DataConnector:
        """A connector over a ``ray.data.Dataset`` (read with ``iter_batches`` on the current cluster)."""
        from shoal.data.ray_sources import RayDatasetSource, accepts_ray_dataset

        if not accepts_ray_dataset(ray_ds):
            raise ConfigError(f"from_ray_dataset needs a ray.data.Dataset, got {type(ray_ds).__qualname__}.")
        return cls(RayDatasetSource(ray_ds), **kwargs)

    @classmethod
    def from_sources(
        cls,
        sources: Any,
        session: Any = None,
        *,
        file_format: str | None = None,
        columns: Sequence[str] | None = None,
        csv_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> DataConnector:
        """A connector over files: stage locations (``@stage/dir/``, ``@stage/dir/**/*.parquet``),
        local paths, folders or globs, read in the order given (see ``shoal.data.file_sources``).

        ``file_format`` is ``"parquet"``, ``"csv"`` or None (from each file's extension).
        ``columns`` reads only those columns; ``csv_options`` are fields of pyarrow's CSV
        read/parse/convert options (``delimiter``, ``column_types``, ...). The reference form
        ``from_sources(session, sources)`` works too; the session is not needed to read stages.
        """
        from shoal.data.file_sources import FileSource, resolve_files

        if _is_session(sources) or (sources is None and session is not None):
            sources, session = session, sources
        if isinstance(sources, (str, os.PathLike)):
            sources = [sources]
        if not isinstance(sources, (list, tuple)) or not sources:
            raise ConfigError(
                f"from_sources needs a non-empty list of stage locations or local paths, got {sources!r}."
            )
        files = resolve_files(sources, file_format)
        origins = [os.fspath(s) for s in sources]
        return cls(FileSource(files, origins=origins, columns=columns, csv_options=csv_options), **kwargs)

    @classmethod
    def from_stage(
        cls,
        location: str,
        pattern: str = "*.parquet",
        *,
        file_format: str | None = None,
        columns: Sequence[str] | None = None,
        csv_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> DataConnector:
        """Files under the stage folder ``location`` matching ``pattern``, as ``Stage.list`` matches
        them (``"*.parquet"`` finds parquet files at any depth; ``"2024/*/x.csv"`` matches paths)."""
        from shoal.data.file_sources import FileSource, resolve_stage_pattern

        files = resolve_stage_pattern(location, pattern, file_format)
        origin = f"{location.rstrip('/')}/ ({pattern})"
        return cls(FileSource(files, origins=[origin], columns=columns, csv_options=csv_options), **kwargs)

    # -- what it reads --------------------------------------------------------------------

    @property
    def source(self) -> DataSource:
        """The data source this connector reads."""
        return self._source

    @property
    def data_sources(self) -> list[str]:
        """What is read: each file's location for files, else one description of the source."""
        locations = getattr(self._source, "locations", None)
        return list(locations()) if callable(locations) else [self._source.describe()]

    def schema(self) -> pa.Schema:
        """The Arrow schema of the rows."""
        return self._source.schema()

    @property
    def columns(self) -> list[str]:
        """The column names."""
        return list(self._source.schema().names)

    def num_rows(self) -> int:
        """The number of rows: from metadata when the source knows it, else counted (may read the data)."""
        return int(self._source.count_rows())

    # -- outputs --------------------------------------------------------------------------

    def to_batches(
        self,
        batch_size: int | None = None,
        *,
        shuffle: bool = False,
        drop_last_batch: bool = False,
        seed: int | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Stream the rows as ``pyarrow.RecordBatch`` of exactly ``batch_size`` rows (the last may be
        shorter, or is dropped with ``drop_last_batch``). ``batch_size=None`` yields the source's
        own non-empty batches. ``shuffle`` mixes rows within windows of
        ``max(10 * batch_size, 10000)`` rows (and file order, for files); ``seed`` makes it repeatable.
        """
        if batch_size is not None:
            check_batch_size(batch_size)
        source = self._source
        read_size = min(batch_size, DEFAULT_BATCH_ROWS) if batch_size else None
        if shuffle:
            import numpy as np

            rng = np.random.default_rng(seed)
            source = source.shuffled(rng)
            window = max(10 * (batch_size or 1), SHUFFLE_WINDOW_ROWS)
            batches: Iterator[pa.RecordBatch] = shuffle_windows(source.iter_batches(read_size), window, rng)
        else:
            batches = source.iter_batches(read_size)
        if batch_size is None:
            return _reported(batch for batch in batches if batch.num_rows)
        return _reported(rebatch(batches, batch_size, drop_last=drop_last_batch))

    def to_arrow(self) -> pa.Table:
        """Every row as one ``pyarrow.Table`` (an empty input gives an empty table with the schema)."""
        table = self._source.to_arrow()
        report_progress("rows read")
        return table

    def to_pandas(self, limit: int | None = None) -> pd.DataFrame:
        """The rows as a pandas DataFrame; with ``limit``, only the first ``limit`` rows are read."""
        import pyarrow as pa

        if limit is None:
            return self.to_arrow().to_pandas()
        read_size = max(1, min(limit, DEFAULT_BATCH_ROWS))
        batches = list(limit_rows(self._source.iter_batches(read_size), limit))
        return pa.Table.from_batches(batches, schema=self._source.schema()).to_pandas()

    def to_torch_dataset(
        self,
        *,
        batch_size: int | None = None,
        shuffle: bool = False,
        drop_last_batch: bool = True,
        expand_dims: bool | None = None,
        seed: int | None = None,
    ) -> torch.utils.data.IterableDataset[dict[str, Any]]:
        """A ``torch.utils.data.IterableDataset`` of dicts ``column -> tensor`` (strings stay lists).

        ``batch_size=None`` yields single rows. Use it with ``DataLoader(ds, batch_size=None)``;
        with several workers each batch goes to one worker (striped by worker id);
        ``shuffle=True`` with workers raises ``RuntimeError`` when iterated.
        """
        from shoal.data.torch_dataset import ConnectorTorchDataset

        if batch_size is not None:
            check_batch_size(batch_size)
        if expand_dims is None:
            expand_dims = bool(self._kwargs.get("expand_dims", True))
        return ConnectorTorchDataset(
            self,
            batch_size=batch_size,
            shuffle=shuffle,
            drop_last_batch=drop_last_batch,
            expand_dims=expand_dims,
            seed=seed,
        )

    def to_torch_datapipe(
        self, *, batch_size: int, shuffle: bool = False, drop_last_batch: bool = True
    ) -> torch.utils.data.IterableDataset[dict[str, Any]]:
        """Deprecated in the reference product: use :meth:`to_torch_dataset`."""
        warnings.warn(
            "to_torch_datapipe is deprecated; use to_torch_dataset", DeprecationWarning, stacklevel=2
        )
        return self.to_torch_dataset(batch_size=batch_size, shuffle=shuffle, drop_last_batch=drop_last_batch)

    def to_ray_dataset(self) -> Any:
        """A ``ray.data.Dataset``: the dataset itself for a Ray source, ``read_parquet`` for local
        parquet files, else ``ray.data.from_arrow`` over the rows (read on the driver).

        It lives on the Ray cluster this process is connected to: inside a job or a partition,
        the pool's. A process connected to none connects to the default compute pool first (the
        rule DPF follows: ``set_default_compute_pool``, ``SHOAL_COMPUTE_POOL``, else ``DEFAULT``),
        never to a private Ray instance of its own."""
        import ray.data

        from shoal.data.file_sources import FileSource
        from shoal.data.ray_sources import RayDatasetSource

        source = self._source
        if isinstance(source, RayDatasetSource):
            return source.dataset
        _connect_to_the_default_pool()
        if isinstance(source, FileSource) and all(ref.format == "parquet" for ref in source.files):
            paths = source.local_paths()
            if paths is not None:
                return ray.data.read_parquet(paths, columns=source.columns)
        tables = [self._table_of(batch) for batch in self.to_batches(DEFAULT_BATCH_ROWS)]
        if not tables:
            return ray.data.from_arrow(self._source.schema().empty_table())
        return ray.data.from_arrow(tables)

    @staticmethod
    def _table_of(batch: pa.RecordBatch) -> pa.Table:
        import pyarrow as pa

        return pa.Table.from_batches([batch])

    # -- identity -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"DataConnector({self._source.describe()})"


def _connect_to_the_default_pool() -> None:
    """Connect this process to the default compute pool's Ray cluster (starting its first node)
    unless it is connected to a Ray cluster already (driver)."""
    import ray

    if ray.is_initialized():
        return
    from shoal.pools.api import get_backend
    from shoal.pools.connect import connect
    from shoal.pools.default import default_compute_pool

    backend = get_backend(default_compute_pool())
    backend.ensure_nodes(1, progress=None)
    connect(backend.address())

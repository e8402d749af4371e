"""Split a data source into ``world_size`` shards, so each training worker reads only its own.

* Files (parquet, CSV): rows are numbered across the files in order; each shard is a list of
  ``(file, first row, last row)`` slices and reads only the files it overlaps. Parquet row counts
  come from the footers; CSV files are counted once on the driver.
* A Ray dataset: ``Dataset.split(world_size, equal=True)``, or ``split_at_indices`` by row
  counts when ``equal=False`` (``split(equal=False)`` cuts at block boundaries only).
* A query on a DuckDB database file (the warehouse): given a ``scratch`` folder on a stage (a
  training job's), DuckDB writes its rows there as parquet once and the ranks read their row
  groups as files; no process holds the rows. Without one, as below.
* Rows in Ray's object store (an in-memory frame a training put there once,
  :mod:`shoal.data.object_store`): a row range of the same object per shard.
* A Snowpark DataFrame of the workspace's Snowpark service, saved by the caller in the service as
  a numbered table: a range of row numbers per shard, each read by the rank's own
  connection to the service.
* Anything else (pandas, Polars, Arrow, a DuckDB relation, Snowpark local_testing): read once on
  the driver and sliced; each worker receives only its slice.

``equal=True`` gives every shard ``rows // world_size`` rows (the remainder is dropped, as in the
reference product); ``equal=False`` gives shard sizes that differ by at most one row.

Runs on the driver; the shard sources run on the workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS, ArrowTableSource
from shoal.data.batches import align_batch
from shoal.data.duckdb_sources import DuckDBQuerySource
from shoal.data.file_sources import FileRef, FileSource
from shoal.data.object_store import ObjectSliceSource, ObjectStoreSource
from shoal.data.ray_sources import RayDatasetSource
from shoal.data.snowpark_sources import ServiceTableSource
from shoal.data.source import DataSource

if TYPE_CHECKING:
    import pyarrow as pa


def shard_bounds(rows: int, world_size: int, equal: bool) -> list[tuple[int, int]]:
    """``[start, stop)`` row ranges of each shard."""
    if equal:
        size = rows // world_size
        return [(rank * size, (rank + 1) * size) for rank in range(world_size)]
    base, extra = divmod(rows, world_size)
    bounds, start = [], 0
    for rank in range(world_size):
        stop = start + base + (1 if rank < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


@dataclass(frozen=True)
class FileRead:
    """What one read of one file slice did: its rows, the parquet row groups it opened (None for
    CSV, read from the start) and how many rows it decoded to get them."""

    location: str
    start: int
    stop: int
    row_groups: tuple[int, ...] | None
    rows_decoded: int


class FileSliceSource(DataSource):
    """Row slices of some files of a :class:`FileSource` (one shard). Parquet slices read only
    the row groups that hold their rows; :attr:`read_log` says what each read did."""

    kind = "file shard"

    def __init__(
        self,
        files: FileSource,
        slices: list[tuple[int, int, int]],
        row_groups: list[tuple[list[int] | None, int]] | None = None,
    ) -> None:
        self.files = files
        self.slices = slices  # (file index, start row in that file, stop row)
        #: per slice: the parquet row groups holding its rows and the first one's first row
        #: (``(None, 0)``: read the file from its start), chosen on the driver from the footers
        self.row_groups = row_groups or [(None, 0)] * len(slices)
        self.read_log: list[FileRead] = []  # this process's reads, newest last

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "read_log": []}  # each process logs its own reads

    def schema(self) -> pa.Schema:
        return self.files.schema()

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        for (index, start, stop), (groups, offset) in zip(self.slices, self.row_groups, strict=True):
            ref = self.files.files[index]
            decoded = 0
            try:
                for batch in self.files._file_batches(ref, batch_size or DEFAULT_BATCH_ROWS, groups):
                    decoded += batch.num_rows
                    low, high = max(start - offset, 0), min(stop - offset, batch.num_rows)
                    offset += batch.num_rows
                    if high > low:
                        yield align_batch(batch.slice(low, high - low), schema, ref.location)
                    if offset >= stop:
                        break
            finally:
                self.read_log.append(
                    FileRead(
                        ref.location, start, stop, tuple(groups) if groups is not None else None, decoded
                    )
                )

    def num_rows(self) -> int:
        return sum(stop - start for _, start, stop in self.slices)

    def describe(self) -> str:
        return f"{self.kind}: {self.num_rows()} rows from {len(self.slices)} of {self.files.describe()}"


def _file_layout(files: FileSource) -> list[tuple[int, list[int] | None]]:
    """Per file: its row count and, for parquet, its row groups' sizes (from the footer)."""
    import pyarrow.parquet as pq

    layout: list[tuple[int, list[int] | None]] = []
    for ref in files.files:
        if ref.format == "parquet":
            with ref.open() as handle:
                metadata = pq.read_metadata(handle)
            sizes = [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]
            layout.append((metadata.num_rows, sizes))
        else:
            single = FileSource([ref], columns=files.columns, csv_options=files.csv_options)
            layout.append((sum(b.num_rows for b in single.iter_batches()), None))
    return layout


def covering_groups(sizes: list[int] | None, start: int, stop: int) -> tuple[list[int] | None, int]:
    """The row groups (of ``sizes`` rows each) that hold rows ``[start, stop)``, and the first
    one's first row; ``(None, 0)`` without row groups (CSV, read from its start)."""
    if sizes is None:
        return None, 0
    groups, first, offset = [], None, 0
    for index, rows in enumerate(sizes):
        if offset < stop and offset + rows > start:
            groups.append(index)
            first = offset if first is None else first
        offset += rows
    return groups, first or 0


def _shard_files(files: FileSource, world_size: int, equal: bool) -> list[DataSource]:
    layout = _file_layout(files)
    counts = [rows for rows, _ in layout]
    starts = [sum(counts[:i]) for i in range(len(counts))]
    shards: list[DataSource] = []
    for low, high in shard_bounds(sum(counts), world_size, equal):
        slices, groups = [], []
        for index, (first, count) in enumerate(zip(starts, counts, strict=True)):
            start, stop = max(low, first), min(high, first + count)
            if stop > start:
                slices.append((index, start - first, stop - first))
                groups.append(covering_groups(layout[index][1], start - first, stop - first))
        shards.append(FileSliceSource(files, slices, groups))
    return shards


def export_query(source: DuckDBQuerySource, location: str, world_size: int) -> FileSource:
    """Run ``source``'s query once, in DuckDB, into one parquet file at ``location`` (``@STAGE/
    folder``), in row groups small enough that each of ``world_size`` ranks reads about its own."""
    import tempfile

    from shoal.data.warehouse import open_database
    from shoal.stages import resolve_location

    stage, folder = resolve_location(location)
    path = f"{folder.rstrip('/')}/rows.parquet"
    rows = source.count_rows()
    group_rows = min(max(rows // (world_size * 8), 1024), 131072)
    local = stage.backend.local_path(path)
    target = Path(local) if local else Path(tempfile.mkdtemp(prefix="shoal-export-")) / "rows.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    quoted = str(target).replace("'", "''")
    connection = open_database(source.database, read_only=True)
    try:
        connection.execute(
            f"COPY ({source.query}) TO '{quoted}' (FORMAT parquet, ROW_GROUP_SIZE {group_rows})"
        )
    finally:
        connection.close()
    if not local:
        stage.write_bytes(path, target.read_bytes())
        target.unlink()
    return FileSource([FileRef(path, "parquet", stage)], origins=[source.describe()])


def shard_source(
    source: DataSource, world_size: int, *, equal: bool = False, scratch: str | None = None
) -> list[DataSource]:
    """``world_size`` sources, one per rank, together holding the rows of ``source``.

    ``scratch`` (``@STAGE/folder``, a training job's own) is where a DuckDB query's rows are
    exported as parquet, so that each rank reads its row groups and no process holds them all."""
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if isinstance(source, DuckDBQuerySource) and scratch is not None:
        source = export_query(source, scratch, world_size)
    if isinstance(source, FileSource):
        return _shard_files(source, world_size, equal)
    if isinstance(source, ServiceTableSource):  # numbered rows in the Snowpark service
        return [
            source.rows_between(start, stop) for start, stop in shard_bounds(source.rows, world_size, equal)
        ]
    if isinstance(source, ObjectStoreSource):  # one object, a row range per rank
        return [
            ObjectSliceSource(source, start, stop)
            for start, stop in shard_bounds(source.num_rows(), world_size, equal)
        ]
    if isinstance(source, RayDatasetSource):
        dataset = source.dataset
        if equal:
            parts = dataset.split(world_size, equal=True)
        else:  # Dataset.split(equal=False) splits by blocks (one block: one full shard); split by rows
            bounds = shard_bounds(dataset.count(), world_size, equal=False)
            parts = dataset.split_at_indices([start for start, _ in bounds[1:]])
        shards: list[DataSource] = []
        for part in parts:
            shard = RayDatasetSource(part)
            shard._schema = source.schema()  # an empty shard still has the input's columns
            shards.append(shard)
        return shards
    table = source.to_arrow()
    origin = source.describe()
    return [
        ArrowTableSource(table.slice(start, stop - start), origin=f"shard {rank} of {origin}")
        for rank, (start, stop) in enumerate(shard_bounds(table.num_rows, world_size, equal))
    ]

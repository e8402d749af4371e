"""Split a data source into ``world_size`` shards, so each training worker reads only its own.

* Files (parquet, CSV): rows are numbered across the files in order; each shard is a list of
  ``(file, first row, last row)`` slices and reads only the files it overlaps. Parquet row counts
  come from the footers; CSV files are counted once on the driver.
* A Ray dataset: ``Dataset.split(world_size, equal=True)``, or ``split_at_indices`` by row
  counts when ``equal=False`` (``split(equal=False)`` cuts at block boundaries only).
* Anything else (pandas, Polars, Arrow, DuckDB, Snowpark): read once on the driver and sliced;
  each worker receives only its slice.

``equal=True`` gives every shard ``rows // world_size`` rows (the remainder is dropped, as in the
reference product); ``equal=False`` gives shard sizes that differ by at most one row.

Runs on the driver; the shard sources run on the workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS, ArrowTableSource
from shoal.data.batches import align_batch
from shoal.data.file_sources import FileSource
from shoal.data.ray_sources import RayDatasetSource
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


class FileSliceSource(DataSource):
    """Row slices of some files of a :class:`FileSource` (one shard)."""

    kind = "file shard"

    def __init__(self, files: FileSource, slices: list[tuple[int, int, int]]) -> None:
        self.files = files
        self.slices = slices  # (file index, start row in that file, stop row)

    def schema(self) -> pa.Schema:
        return self.files.schema()

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        schema = self.schema()
        for index, start, stop in self.slices:
            ref = self.files.files[index]
            offset = 0
            for batch in self.files._file_batches(ref, batch_size or DEFAULT_BATCH_ROWS):
                low, high = max(start - offset, 0), min(stop - offset, batch.num_rows)
                offset += batch.num_rows
                if high > low:
                    yield align_batch(batch.slice(low, high - low), schema, ref.location)
                if offset >= stop:
                    break

    def num_rows(self) -> int:
        return sum(stop - start for _, start, stop in self.slices)

    def describe(self) -> str:
        return f"{self.kind}: {self.num_rows()} rows from {len(self.slices)} of {self.files.describe()}"


def _file_rows(files: FileSource) -> list[int]:
    import pyarrow.parquet as pq

    counts = []
    for ref in files.files:
        if ref.format == "parquet":
            with ref.open() as handle:
                counts.append(pq.read_metadata(handle).num_rows)
        else:
            single = FileSource([ref], columns=files.columns, csv_options=files.csv_options)
            counts.append(sum(b.num_rows for b in single.iter_batches()))
    return counts


def _shard_files(files: FileSource, world_size: int, equal: bool) -> list[DataSource]:
    counts = _file_rows(files)
    starts = [sum(counts[:i]) for i in range(len(counts))]
    shards: list[DataSource] = []
    for low, high in shard_bounds(sum(counts), world_size, equal):
        slices = []
        for index, (first, count) in enumerate(zip(starts, counts, strict=True)):
            start, stop = max(low, first), min(high, first + count)
            if stop > start:
                slices.append((index, start - first, stop - first))
        shards.append(FileSliceSource(files, slices))
    return shards


def shard_source(source: DataSource, world_size: int, *, equal: bool = False) -> list[DataSource]:
    """``world_size`` sources, one per rank, together holding the rows of ``source``."""
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if isinstance(source, FileSource):
        return _shard_files(source, world_size, equal)
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

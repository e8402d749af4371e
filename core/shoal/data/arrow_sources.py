"""Arrow data sources: a table in memory, and a ``pyarrow.dataset.Dataset``.

:class:`ArrowTableSource` is also what the pandas, Polars, Snowpark ``local_testing`` and
materialized DuckDB sources become: their rows are converted to Arrow once, on the driver, and
pickle as Arrow data. :class:`ArrowDatasetSource` streams a dataset with ``Dataset.to_batches``;
a file-backed dataset pickles as itself (paths and format), an in-memory one as its table.

Runs on the driver and on workers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from shoal.data.source import DataSource

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

DEFAULT_BATCH_ROWS = 65_536


def _shape(num_rows: int | None, num_columns: int) -> str:
    rows = "? rows" if num_rows is None else f"{num_rows} row{'s' if num_rows != 1 else ''}"
    return f"{rows} x {num_columns} column{'s' if num_columns != 1 else ''}"


class ArrowTableSource(DataSource):
    """Rows already in memory as a ``pyarrow.Table``; ``origin`` says what they came from."""

    kind = "arrow"

    def __init__(self, table: pa.Table, *, origin: str = "pyarrow Table") -> None:
        self.table = table
        self.origin = origin

    def schema(self) -> pa.Schema:
        return self.table.schema

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        for batch in self.table.to_batches(max_chunksize=batch_size or DEFAULT_BATCH_ROWS):
            if batch.num_rows:
                yield batch

    def to_arrow(self) -> pa.Table:
        return self.table

    def num_rows(self) -> int:
        return int(self.table.num_rows)

    def describe(self) -> str:
        return f"{self.origin}: {_shape(self.table.num_rows, self.table.num_columns)} (in memory)"


def table_from_batches(batches: Sequence[Any]) -> pa.Table:
    """One table from a non-empty sequence of ``RecordBatch`` (all with the same schema)."""
    import pyarrow as pa

    try:
        return pa.Table.from_batches(list(batches))
    except pa.ArrowInvalid as exc:
        raise ValueError(f"the record batches do not share one schema: {exc}") from exc


class ArrowDatasetSource(DataSource):
    """A ``pyarrow.dataset.Dataset`` (files or in memory), streamed with ``Dataset.to_batches``."""

    kind = "arrow dataset"

    def __init__(self, dataset: pads.Dataset, **scan_options: Any) -> None:
        self.dataset = dataset
        self.scan_options = scan_options  # e.g. columns=[...], filter=pc.field("x") > 1

    def schema(self) -> pa.Schema:
        import pyarrow as pa

        columns = self.scan_options.get("columns")
        schema = self.dataset.schema
        if columns:
            return pa.schema([schema.field(name) for name in columns], metadata=schema.metadata)
        return schema

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        for batch in self.dataset.to_batches(
            batch_size=batch_size or DEFAULT_BATCH_ROWS, **self.scan_options
        ):
            if batch.num_rows:
                yield batch

    def count_rows(self) -> int:
        return int(self.dataset.count_rows(**{k: v for k, v in self.scan_options.items() if k == "filter"}))

    def describe(self) -> str:
        files = getattr(self.dataset, "files", None)
        where = f"{len(files)} file{'s' if len(files) != 1 else ''}" if files is not None else "in memory"
        return f"{self.kind} ({type(self.dataset).__name__}, {where}): {len(self.schema())} columns"

    def __getstate__(self) -> dict[str, Any]:
        import pyarrow.dataset as pads

        if isinstance(self.dataset, pads.FileSystemDataset):
            return {"dataset": self.dataset, "scan_options": self.scan_options}
        # in-memory datasets do not pickle: ship their (scanned) rows
        return {"table": self.dataset.to_table(**self.scan_options), "scan_options": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        import pyarrow.dataset as pads

        self.scan_options = state["scan_options"]
        self.dataset = state["dataset"] if "dataset" in state else pads.dataset(state["table"])

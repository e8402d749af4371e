"""In-memory rows of a training input, in Ray's object store: put once, each rank reads its slice.

A pandas, Polars or Arrow frame handed to a distributed training is an Arrow table
(:class:`~shoal.data.arrow_sources.ArrowTableSource`). The process that runs the training on the
job's nodes (the job's head) puts the table into the pool's object store once
(:func:`store_in_memory_inputs`) and cuts it into :class:`ObjectSliceSource` shards, the same
object reference and a row range each (:func:`shoal.data.sharding.shard_source`). A rank
``ray.get``s the table (on the node that holds it, a read-only view of shared memory, no copy; on
another node, Ray moves the object there once) and reads only its rows: the rows are not pickled
once per rank into the ranks' tasks.

The job's head owns the object; it is freed when the training call returns.

Runs on the job's head (put, sharding) and on the training workers (reading).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS, ArrowTableSource
from shoal.data.source import DataSource

if TYPE_CHECKING:
    import pyarrow as pa


class ObjectStoreSource(DataSource):
    """A whole Arrow table held in Ray's object store (``ref``)."""

    kind = "object store"

    def __init__(self, ref: Any, schema: pa.Schema, rows: int, origin: str) -> None:
        self.ref, self._schema, self.rows, self.origin = ref, schema, rows, origin

    def schema(self) -> pa.Schema:
        return self._schema

    def _table(self) -> pa.Table:
        import ray

        table: pa.Table = ray.get(self.ref)
        return table

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        yield from _batches(self._table(), batch_size)

    def to_arrow(self) -> pa.Table:
        return self._table()

    def num_rows(self) -> int:
        return self.rows

    def describe(self) -> str:
        return f"{self.origin}: {self.rows} rows (in Ray's object store)"


class ObjectSliceSource(DataSource):
    """Rows ``[start, stop)`` of a table in Ray's object store: one rank's shard."""

    kind = "object store slice"

    def __init__(self, whole: ObjectStoreSource, start: int, stop: int) -> None:
        self.whole, self.start, self.stop = whole, start, stop

    def schema(self) -> pa.Schema:
        return self.whole.schema()

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        yield from _batches(self.to_arrow(), batch_size)

    def to_arrow(self) -> pa.Table:
        return self.whole.to_arrow().slice(self.start, self.stop - self.start)

    def num_rows(self) -> int:
        return self.stop - self.start

    def describe(self) -> str:
        return f"rows {self.start} to {self.stop} of {self.whole.describe()}"


def _batches(table: pa.Table, batch_size: int | None) -> Iterator[pa.RecordBatch]:
    for batch in table.to_batches(max_chunksize=batch_size or DEFAULT_BATCH_ROWS):
        if batch.num_rows:
            yield batch


def put_table(source: ArrowTableSource) -> ObjectStoreSource:
    """``source``'s table in the object store of the Ray cluster this process is connected to."""
    import ray

    table = source.table
    return ObjectStoreSource(ray.put(table), table.schema, int(table.num_rows), source.origin)


def _in_memory(value: Any) -> bool:
    from shoal.data.sharded import ShardedDataConnector

    return (
        isinstance(value, ShardedDataConnector)
        and value.connector is not None
        and isinstance(value.connector.source, ArrowTableSource)
    )


def store_in_memory_inputs(inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with every sharded input whose rows are in this process's memory replaced by a
    copy that holds them in the object store (keep it until the training ended: it holds the
    objects). The given connectors are not changed."""
    from shoal.data.connector import DataConnector
    from shoal.data.sharded import ShardedDataConnector

    stored = dict(inputs)
    for key, value in inputs.items():
        if _in_memory(value):
            in_store = put_table(value.connector.source)
            connector = DataConnector(in_store, **value.connector._kwargs)
            stored[key] = ShardedDataConnector(connector, equal=value.equal)
    return stored

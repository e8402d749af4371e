"""Streaming operations on iterators of ``pyarrow.RecordBatch``: exact-size re-batching, a row
limit, a bounded shuffle, and aligning a batch to a schema.

Every function here consumes its input lazily and holds at most one output batch (or one shuffle
window) of rows at a time, so they keep a streaming source streaming.

Runs on the driver and on workers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa


def check_batch_size(batch_size: object, what: str = "batch_size") -> int:
    """Return ``batch_size`` if it is a positive int, else raise ``ValueError`` saying so."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{what} must be a positive integer, got {batch_size!r}")
    return batch_size


def _concat(pieces: list[pa.RecordBatch]) -> pa.RecordBatch:
    import pyarrow as pa

    return pieces[0] if len(pieces) == 1 else pa.concat_batches(pieces)


def rebatch(
    batches: Iterable[pa.RecordBatch], batch_size: int, *, drop_last: bool = False
) -> Iterator[pa.RecordBatch]:
    """Yield batches of exactly ``batch_size`` rows; the last one may be shorter unless ``drop_last``.

    Input batches are sliced without copying; rows are copied only when one output batch joins
    pieces of several input batches.
    """
    check_batch_size(batch_size)
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            take = min(batch_size - count, batch.num_rows - offset)
            pending.append(batch.slice(offset, take))
            count += take
            offset += take
            if count == batch_size:
                yield _concat(pending)
                pending, count = [], 0
    if count and not drop_last:
        yield _concat(pending)


def limit_rows(batches: Iterable[pa.RecordBatch], limit: int | None) -> Iterator[pa.RecordBatch]:
    """Yield the first ``limit`` rows (all rows for ``None``), then stop reading the input."""
    if limit is None:
        yield from batches
        return
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be None or a non-negative integer, got {limit!r}")
    remaining = limit
    if remaining == 0:
        return
    for batch in batches:
        if batch.num_rows >= remaining:
            yield batch.slice(0, remaining)
            return
        remaining -= batch.num_rows
        yield batch


def shuffle_windows(
    batches: Iterable[pa.RecordBatch], window_rows: int, rng: np.random.Generator
) -> Iterator[pa.RecordBatch]:
    """Shuffle rows within consecutive windows of about ``window_rows`` rows.

    A row moves anywhere inside its window, never across windows, so memory stays bounded by
    one window. (The reference product shuffles only within each output batch.)
    """
    check_batch_size(window_rows, "window_rows")
    pending: list[pa.RecordBatch] = []
    count = 0

    def flush() -> pa.RecordBatch:
        window = _concat(pending)
        return window.take(rng.permutation(window.num_rows))

    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        count += batch.num_rows
        if count >= window_rows:
            yield flush()
            pending, count = [], 0
    if count:
        yield flush()


def align_batch(batch: pa.RecordBatch, schema: pa.Schema, origin: str = "") -> pa.RecordBatch:
    """Return ``batch`` with exactly the fields of ``schema``, in its order.

    Missing columns become nulls; columns of another type are cast; extra columns are an error
    naming ``origin`` (the file or source that produced the batch).
    """
    import pyarrow as pa

    if batch.schema.equals(schema, check_metadata=False):
        return (
            batch
            if batch.schema.metadata == schema.metadata
            else batch.replace_schema_metadata(schema.metadata)
        )
    extra = [name for name in batch.schema.names if schema.get_field_index(name) < 0]
    if extra:
        raise ValueError(f"{origin or 'a batch'} has columns {extra} that the schema {schema.names} lacks")
    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, type=field.type))
            continue
        column = batch.column(index)
        if not column.type.equals(field.type):
            try:
                column = column.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise ValueError(
                    f"{origin or 'a batch'}: column {field.name!r} has type {column.type}, which cannot be "
                    f"read as {field.type} like the other files ({exc})"
                ) from exc
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)

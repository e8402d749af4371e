"""A rank's training rows as float32 matrices, read from its shard in Arrow batches.

The tabular backends never build a pandas frame or a whole Arrow table of a shard:

* :func:`iter_matrices` yields ``(features, label)`` one Arrow batch at a time (about
  :data:`BATCH_BYTES` of features each: 8 MB kept a rank's peak lowest, measured against 4, 16,
  32 and 64 MB), for XGBoost's data iterator;
* :func:`read_matrix` fills one preallocated C-ordered float32 matrix batch by batch, for a
  ``Dataset`` that wants the rows at once: the peak is the matrix plus one batch;
* :func:`read_picked_rows` reads the shard once for the labels and a few chosen rows (LightGBM's
  bin sample), so that LightGBM's ranks can then stream the rows (``ShardRows``) and never hold
  the shard as floats.

Each batch read counts as progress (:func:`shoal.train.progress.report_progress`), so a large
shard that takes minutes to load is not taken for a hung rank.

Runs on training workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shoal.train.progress import report_progress

#: Bytes of float32 features per batch a rank reads at a time.
BATCH_BYTES = 8 * 1024**2


def feature_columns(schema: Any, input_cols: list[str] | None, label_col: str) -> list[str]:
    """``input_cols``, else every numeric or boolean column but the label (a partition's key
    column, a string, is left out)."""
    if input_cols:
        return list(input_cols)
    import pyarrow as pa

    return [
        field.name
        for field in schema
        if field.name != label_col
        and (
            pa.types.is_integer(field.type)
            or pa.types.is_floating(field.type)
            or pa.types.is_boolean(field.type)
        )
    ]


def batch_rows(columns: int) -> int:
    """Rows per batch: about :data:`BATCH_BYTES` of float32 features, at least 1,024."""
    return max(1024, BATCH_BYTES // (4 * max(columns, 1)))


def to_matrix(batch: Any, input_cols: list[str], out: Any = None) -> Any:
    """The batch's features as a C-ordered float32 matrix, written into ``out`` when given (one
    copy: each column is cast as it is written)."""
    import numpy as np

    if out is None:
        out = np.empty((batch.num_rows, len(input_cols)), dtype=np.float32)
    for index, name in enumerate(input_cols):
        out[:, index] = batch.column(name).to_numpy(zero_copy_only=False)
    return out


def label_of(batch: Any, label_col: str) -> Any:
    return batch.column(label_col).to_numpy(zero_copy_only=False)


def _batches(
    shard: Any, input_cols: list[str], label_col: str | None, rows: int | None, total: int | None
) -> Iterator[Any]:
    """The shard's Arrow batches with only the columns training uses, each read counted as
    progress (out of ``total`` when known)."""
    columns = [*input_cols, *([label_col] if label_col else [])]
    read = 0
    for batch in shard.source.iter_batches(rows or batch_rows(len(input_cols))):
        batch = batch.select(columns)
        read += batch.num_rows
        report_progress(f"read {read} of {total} rows" if total is not None else f"read {read} rows")
        yield batch


def iter_matrices(
    shard: Any, input_cols: list[str], label_col: str | None, rows: int | None = None
) -> Iterator[tuple[Any, Any]]:
    """``(features, label)`` per Arrow batch of ``shard`` (a :class:`~shoal.data.DataConnector`)."""
    for batch in _batches(shard, input_cols, label_col, rows, None):
        yield to_matrix(batch, input_cols), (label_of(batch, label_col) if label_col else None)


def read_matrix(shard: Any, input_cols: list[str], label_col: str | None) -> tuple[Any, Any]:
    """The whole shard as ``(features, label)``: one float32 matrix filled batch by batch."""
    import numpy as np

    total = shard.source.num_rows()
    if total is None:  # a source that cannot count cheaply: stack its batches
        parts = list(iter_matrices(shard, input_cols, label_col))
        if not parts:
            return np.empty((0, len(input_cols)), dtype=np.float32), None
        stacked = np.concatenate([p[0] for p in parts]) if len(parts) > 1 else parts[0][0]
        return stacked, (np.concatenate([p[1] for p in parts]) if label_col else None)
    features = np.empty((total, len(input_cols)), dtype=np.float32)
    labels: list[Any] = []
    start = 0
    for batch in _batches(shard, input_cols, label_col, None, total):
        stop = start + batch.num_rows
        to_matrix(batch, input_cols, features[start:stop])
        if label_col:
            labels.append(label_of(batch, label_col))
        start = stop
    if start != total:
        raise RuntimeError(f"the shard said it holds {total} rows but {start} were read")
    if not label_col:
        return features, None
    return features, np.concatenate(labels) if labels else np.empty(0, dtype=np.float32)


def read_picked_rows(shard: Any, input_cols: list[str], label_col: str, picks: Any) -> tuple[Any, Any]:
    """``(rows, label)``: the features of the rows numbered ``picks`` (sorted; None for all) and
    the label of every row, read batch by batch."""
    import numpy as np

    chosen: list[Any] = []
    labels: list[Any] = []
    start = 0
    for batch in _batches(shard, input_cols, label_col, None, shard.source.num_rows()):
        stop = start + batch.num_rows
        labels.append(label_of(batch, label_col))
        if picks is None:
            chosen.append(to_matrix(batch, input_cols))
        else:
            first, last = np.searchsorted(picks, [start, stop])
            if last > first:
                chosen.append(to_matrix(batch.take(picks[first:last] - start), input_cols))
        start = stop
    rows = np.concatenate(chosen) if chosen else np.empty((0, len(input_cols)), dtype=np.float32)
    return rows, np.concatenate(labels) if labels else np.empty(0, dtype=np.float32)

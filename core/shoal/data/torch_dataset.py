"""``DataConnector.to_torch_dataset()``: a ``torch.utils.data.IterableDataset`` over a connector.

Behaviour follows the reference product's torch wrapper:

* each item is a dict ``column -> value`` for one batch of ``batch_size`` rows, or for one row when
  ``batch_size`` is None (values squeezed to scalars);
* numeric and boolean columns become tensors; with ``expand_dims`` (default) a column of a batch
  has shape ``(batch, 1)``; list columns of numbers of equal length become ``(batch, n)`` tensors;
  strings and other values stay Python lists;
* with several ``DataLoader`` workers, batches are striped round-robin by worker id, so each
  batch is read by exactly one worker; ``shuffle=True`` with workers raises ``RuntimeError``.

Use it with ``DataLoader(dataset, batch_size=None)``: batching is the dataset's job.

This module imports torch; ``DataConnector`` imports it only when ``to_torch_dataset`` is called.
Runs wherever the dataset is iterated (the training process and its DataLoader workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

if TYPE_CHECKING:
    import pyarrow as pa

    from shoal.data.connector import DataConnector

_NUMERIC_KINDS = frozenset("biuf")


def _column_value(column: pa.Array | pa.ChunkedArray, *, squeeze: bool, expand_dims: bool) -> Any:
    import pyarrow as pa

    kind = column.type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        values = column.to_pylist()
        try:
            stacked = np.asarray(values)
        except ValueError:
            stacked = None
        if stacked is not None and stacked.dtype.kind in _NUMERIC_KINDS and stacked.ndim >= 2:
            tensor = torch.from_numpy(np.ascontiguousarray(stacked))
            return tensor[0] if squeeze else tensor
        return values[0] if squeeze else values
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        array = column.to_numpy(zero_copy_only=False)
        if array.dtype.kind in _NUMERIC_KINDS:
            if squeeze:
                return torch.from_numpy(np.array(array[0]))
            if expand_dims:
                array = array.reshape(-1, 1)
            if not array.flags.writeable:  # zero-copy views of Arrow memory are read-only
                array = array.copy()
            return torch.from_numpy(np.ascontiguousarray(array))
    values = column.to_pylist()
    return values[0] if squeeze else values


class ConnectorTorchDataset(IterableDataset):
    """Iterates a :class:`~shoal.data.DataConnector` as dicts of tensors (see the module docstring)."""

    def __init__(
        self,
        connector: DataConnector,
        *,
        batch_size: int | None = None,
        shuffle: bool = False,
        drop_last_batch: bool = True,
        expand_dims: bool = True,
        seed: int | None = None,
    ) -> None:
        self.connector = connector
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last_batch = drop_last_batch
        self.expand_dims = expand_dims
        self.seed = seed

    def __iter__(self) -> Iterator[dict[str, Any]]:
        worker = get_worker_info()
        if self.shuffle and worker is not None and worker.num_workers > 0:
            raise RuntimeError(
                "Dataset shuffling is not supported with multiple DataLoader workers (num_workers > 0); "
                "use num_workers=0 with shuffle=True, or shuffle=False with workers."
            )
        stripe, stripes = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        squeeze = self.batch_size is None
        batches = self.connector.to_batches(
            self.batch_size or 1,
            shuffle=self.shuffle,
            drop_last_batch=self.drop_last_batch,
            seed=self.seed,
        )
        for index, batch in enumerate(batches):
            if index % stripes != stripe:
                continue
            yield {
                name: _column_value(batch.column(i), squeeze=squeeze, expand_dims=self.expand_dims)
                for i, name in enumerate(batch.schema.names)
            }

    def __repr__(self) -> str:
        return (
            f"ConnectorTorchDataset(batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"drop_last_batch={self.drop_last_batch}, source={self.connector.source.describe()!r})"
        )

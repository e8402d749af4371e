"""A rank's shard as a ``lightgbm.Sequence``, so a ``Dataset`` is built without the float rows.

Given a reference ``Dataset`` (the shared bin cuts of :mod:`shoal.plugins.lightgbm.bins`),
LightGBM asks a ``Sequence`` for its rows front to back, in slices of ``batch_size``, and bins each
slice as it comes: a rank then holds LightGBM's binned rows (about a byte a value) and one Arrow
batch, never the shard as a float32 matrix (4 bytes a value).

Runs on training workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightgbm
import numpy as np

from shoal.train.tabular_data import batch_rows, iter_matrices


class ShardRows(lightgbm.Sequence):
    """The features of ``shard`` (``rows`` rows), read once, front to back, in Arrow batches.

    Only slices that continue where the last one stopped are served, as LightGBM asks when it
    builds a ``Dataset`` with a reference; anything else is an :class:`IndexError`.
    """

    def __init__(self, shard: Any, input_cols: list[str], rows: int) -> None:
        self.batch_size = batch_rows(len(input_cols))
        self._rows = rows
        self._columns = len(input_cols)
        self._matrices: Iterator[tuple[Any, Any]] = iter_matrices(shard, input_cols, None)
        self._pending: list[Any] = []
        self._pending_rows = 0
        self._served = 0

    def __len__(self) -> int:
        return self._rows

    def __getitem__(self, index: Any) -> Any:
        if not isinstance(index, slice) or (index.start or 0) != self._served or index.step not in (None, 1):
            raise IndexError(
                f"ShardRows serves its rows once, front to back, in slices; asked for {index!r} "
                f"after {self._served} rows"
            )
        stop = min(self._rows if index.stop is None else index.stop, self._rows)
        wanted = max(stop - self._served, 0)
        while self._pending_rows < wanted:
            try:
                matrix, _ = next(self._matrices)
            except StopIteration:
                raise RuntimeError(
                    f"the shard said it holds {self._rows} rows but only "
                    f"{self._served + self._pending_rows} were read"
                ) from None
            self._pending.append(matrix)
            self._pending_rows += matrix.shape[0]
        if not self._pending:
            return np.empty((0, self._columns), dtype=np.float32)
        stacked = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        served, rest = stacked[:wanted], stacked[wanted:]
        self._pending = [rest] if rest.shape[0] else []
        self._pending_rows = rest.shape[0]
        self._served += wanted
        return served

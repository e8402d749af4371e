"""A rank's shard as XGBoost's data iterator: ``QuantileDMatrix`` built from Arrow batches.

XGBoost pulls the shard batch by batch (:func:`shoal.train.tabular_data.iter_matrices`) and keeps
only its quantised matrix (about one byte a value), so a rank never holds its rows as a float
matrix, a pandas frame or a whole Arrow table. Inside the training's communicator the quantile
sketches of all ranks are merged, so every rank bins with the same global cuts.

With ``external_memory`` the pages go to files in the rank's scratch folder
(``ExtMemQuantileDMatrix``) and are read back page by page for each tree: for a shard larger than
the memory a rank has.

Runs on training workers.
"""

from __future__ import annotations

import os
from typing import Any

from shoal.train.tabular_data import iter_matrices

try:
    from xgboost import DataIter
except ImportError:  # pragma: no cover - xgboost is a dependency of this plugin
    DataIter = object  # type: ignore[assignment,misc]


class ShardBatches(DataIter):
    """XGBoost's ``DataIter`` over one rank's shard; restartable (``reset``). XGBoost goes over
    the batches several times (quantile sketches, then the matrix; 4 passes in XGBoost 3.2), and
    each pass reads the shard again:
    keeping the first pass's batches would hold the whole float32 shard, and the rank's peak
    would be about three times its shard instead of under two (measured, docs/training.md)."""

    def __init__(
        self, shard: Any, input_cols: list[str], label_col: str, cache_prefix: str | None = None
    ) -> None:
        self.shard, self.input_cols, self.label_col = shard, input_cols, label_col
        self._batches: Any = None
        self.batches_read = 0
        super().__init__(cache_prefix=cache_prefix, release_data=True)

    def next(self, input_data: Any) -> bool:
        if self._batches is None:
            self._batches = iter_matrices(self.shard, self.input_cols, self.label_col)
        item = next(self._batches, None)
        if item is None:
            return False
        features, label = item
        input_data(data=features, label=label)
        self.batches_read += 1
        return True

    def reset(self) -> None:
        self._batches = None


def quantile_matrix(
    shard: Any,
    input_cols: list[str],
    label_col: str,
    params: dict[str, Any],
    *,
    ref: Any = None,
    external_memory_dir: str | None = None,
) -> Any:
    """The shard as a ``QuantileDMatrix`` (``ref``: the training matrix, for an eval set), or an
    ``ExtMemQuantileDMatrix`` paged to ``external_memory_dir``."""
    import xgboost

    max_bin = int(params.get("max_bin", 256))
    if external_memory_dir is not None:
        os.makedirs(external_memory_dir, exist_ok=True)
        batches = ShardBatches(shard, input_cols, label_col, os.path.join(external_memory_dir, "xgb-cache"))
        return xgboost.ExtMemQuantileDMatrix(batches, max_bin=max_bin, ref=ref)
    return xgboost.QuantileDMatrix(ShardBatches(shard, input_cols, label_col), max_bin=max_bin, ref=ref)

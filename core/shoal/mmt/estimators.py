"""Ready-made per-partition training with an estimator plugin: the ``train_func`` that
``ManyModelTraining.from_estimator`` uses.

It goes through the same ``shoal_estimators`` hook as distributed training: the plugin's
factory builds its backend, and :func:`shoal.train.local.fit_local` runs it as a world of one
rank inside the partition's worker. Any installed trainer plugin works, a third party's
included, with no change to shoal.

Built on the driver (where :meth:`EstimatorPerPartition.check` builds the backend once, so a bad
option fails before anything runs); called on the partition workers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EstimatorPerPartition:
    """``train_func(data_connector, context)`` that fits estimator ``estimator`` on the partition."""

    estimator: str
    label_col: str
    input_cols: list[str] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def _backend(self) -> Any:
        from shoal.train.local import build

        return build(self.estimator, label_col=self.label_col, input_cols=self.input_cols, **self.options)

    def check(self) -> None:
        """Driver: build the backend once, so unknown or bad options fail now."""
        from shoal.errors import ConfigError

        if not isinstance(self.label_col, str) or not self.label_col:
            raise ConfigError("from_estimator needs label_col=, the name of the column to predict")
        if self.input_cols is not None and self.label_col in self.input_cols:
            raise ConfigError(f"label_col {self.label_col!r} is also listed in input_cols; remove it")
        try:
            self._backend()
        except TypeError as exc:
            raise ConfigError(f"estimator {self.estimator!r} does not take these options: {exc}") from exc

    def __call__(self, data: Any, context: Any) -> Any:
        from shoal.train.local import fit_local

        return fit_local(self._backend(), data, label_col=self.label_col, input_cols=self.input_cols)

"""The ``histgb`` estimator backend: data-parallel bagging of scikit-learn HistGradientBoosting.

There is no collective: every rank fits a complete model on its own shard, independently.

* ``__init__`` (driver, in the factory): check every option, so a mistake fails before a
  worker starts. Unknown scikit-learn parameters and bad values raise ``ConfigError``.
* ``start`` / ``worker_context`` / ``shutdown``: the defaults (nothing to rendezvous).
* ``train`` (worker): read this rank's shard as a pandas DataFrame, fit one model with the
  worker's CPUs as its thread budget, return the fitted model.
* ``collect`` (driver): wrap the ranks' models in an :class:`~shoal_histgb.ensemble.AveragingEnsemble`.

``shoal.train.fit`` passes its options to the factory only, so this object carries
``label_col`` / ``input_cols`` itself; it is pickled to the workers with them.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from shoal.errors import ConfigError
from shoal.train.backend import EstimatorBackend, TrainTask
from shoal.train.ranks import RankInfo
from shoal.train.scaling import ScalingRequest

#: ``task=`` value -> the scikit-learn class each rank fits
MODELS = {
    "regression": "HistGradientBoostingRegressor",
    "classification": "HistGradientBoostingClassifier",
}


def model_class(task: str) -> Any:
    """The scikit-learn estimator class for ``task`` (imports scikit-learn)."""
    import sklearn.ensemble  # type: ignore[import-untyped]

    return getattr(sklearn.ensemble, MODELS[task])


class HistGBBackend(EstimatorBackend):
    """Options: ``label_col`` (required), ``input_cols`` (default: every other column),
    ``task`` (``"regression"`` or ``"classification"``), ``num_workers`` / ``cpus_per_worker``
    (``-1``: one worker per node, all its CPUs), and any ``HistGradientBoosting*`` parameter
    (``max_iter=``, ``learning_rate=``, ``max_leaf_nodes=``, ...)."""

    ports_per_worker = 0  # no rendezvous: ranks never talk to each other
    nonempty_inputs = ("train",)  # every member needs rows to fit on

    def __init__(
        self,
        *,
        label_col: str | None = None,
        input_cols: Sequence[str] | None = None,
        task: str = "regression",
        num_workers: int = -1,
        cpus_per_worker: float = -1,
        **params: Any,
    ) -> None:
        if not isinstance(label_col, str) or not label_col:
            raise ConfigError("histgb needs label_col=, the name of the column to predict")
        if input_cols is not None:
            if isinstance(input_cols, str) or not all(isinstance(c, str) for c in input_cols):
                raise ConfigError(f"histgb: input_cols must be a list of column names, got {input_cols!r}")
            input_cols = list(input_cols)
            if not input_cols:
                raise ConfigError("histgb: input_cols is empty; pass None to use every column but the label")
            if len(set(input_cols)) != len(input_cols):
                raise ConfigError(f"histgb: input_cols lists a column twice: {input_cols}")
            if label_col in input_cols:
                raise ConfigError(f"histgb: label_col {label_col!r} is also listed in input_cols; remove it")
        if task not in MODELS:
            raise ConfigError(f"histgb: task must be one of {', '.join(map(repr, MODELS))}, got {task!r}")
        self.label_col = label_col
        self.input_cols: list[str] | None = input_cols
        self.task = task
        self.params = self._checked_params(task, params)
        self._scaling = ScalingRequest(num_workers=num_workers, cpus_per_worker=cpus_per_worker)

    @staticmethod
    def _checked_params(task: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` if scikit-learn accepts them, else a ``ConfigError`` naming the bad one."""
        cls = model_class(task)
        valid = sorted(cls().get_params())
        for name in params:
            if name not in valid:
                close = difflib.get_close_matches(name, valid, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(
                    f"histgb: unknown option {name!r}: not a parameter of sklearn {cls.__name__}{hint} "
                    f"(histgb options: label_col, input_cols, task, num_workers, cpus_per_worker; "
                    f"{cls.__name__} parameters: {', '.join(valid)})"
                )
        # scikit-learn checks values only in fit(), on the workers; check them here, before
        # anything is reserved (a private helper, so only when this version has it).
        validate = getattr(cls(**params), "_validate_params", None)
        if callable(validate):
            try:
                validate()
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"histgb: {exc}") from exc
        return dict(params)

    @property
    def scaling(self) -> ScalingRequest:
        return self._scaling

    def train(self, rank: RankInfo, task: TrainTask, setup: Any) -> Any:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        frame = task.shards["train"].get_shard().to_pandas()
        columns = list(frame.columns)
        if self.label_col not in columns:
            raise ConfigError(
                f"histgb: label_col {self.label_col!r} is not a column of the data; its columns are: "
                f"{', '.join(columns)}"
            )
        features = self.input_cols or [c for c in columns if c != self.label_col]
        missing = [c for c in features if c not in columns]
        if missing:
            raise ConfigError(
                f"histgb: input_cols {missing} are not columns of the data; "
                f"its columns are: {', '.join(columns)}"
            )
        label = frame[self.label_col]
        if self.task == "classification" and label.nunique() < 2:
            raise ConfigError(
                f"histgb: rank {rank.rank}'s shard has a single class in {self.label_col!r}; a classifier "
                f"needs at least two (shuffle the data or use fewer workers)"
            )
        model = model_class(self.task)(**self.params)
        with threadpool_limits(limits=max(int(rank.cpus), 1)):
            model.fit(frame[features], label)
        print(
            f"[histgb] rank {rank.rank}/{rank.world_size}: {type(model).__name__} fitted on "
            f"{len(frame)} rows, {model.n_iter_} iterations",
            flush=True,
        )
        return model

    def collect(self, results: list[Any]) -> Any:
        from shoal_histgb.ensemble import AveragingEnsemble

        return AveragingEnsemble(results, task=self.task, label_col=self.label_col)

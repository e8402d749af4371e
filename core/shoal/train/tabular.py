"""The shared shape of the tabular estimators (XGBoost, LightGBM, a third party's):
``Estimator(n_estimators, objective, params, scaling_config, callbacks).fit(dataset, input_cols,
label_col, eval_set=None, verbose_eval=None)`` returning the framework's booster.

:class:`TabularScalingConfig` is the reference's ``num_workers`` / ``num_cpu_per_worker`` /
``use_gpu`` trio. :class:`TabularEstimator` checks the input (columns, label) on the driver
before anything is reserved, shards it, and hands the plugin's backend to
:func:`~shoal.train.runner.run_training`. :meth:`TabularBackend.arrays` turns a worker's shards
into float32 matrices on the worker (:mod:`shoal.train.tabular_data`).

Runs on the driver, except the backend's worker side.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from shoal.errors import ConfigError
from shoal.train.backend import EstimatorBackend, TrainTask, build_backend
from shoal.train.scaling import ScalingRequest


@dataclass
class TabularScalingConfig:
    """``num_workers=-1``: one worker per node; ``num_cpu_per_worker=-1``: all of a node's CPUs
    (shared by its workers); ``use_gpu=None``: GPUs when every node used has one."""

    num_workers: int = -1
    num_cpu_per_worker: int = -1
    use_gpu: bool | None = None

    def to_request(self) -> ScalingRequest:
        gpus = -1 if self.use_gpu is None else (1 if self.use_gpu else 0)
        return ScalingRequest(
            num_workers=self.num_workers, cpus_per_worker=self.num_cpu_per_worker, gpus_per_worker=gpus
        )


class TabularBackend(EstimatorBackend):
    """Base of the booster backends: the options every tabular estimator's factory receives.

    Built on the driver by the plugin's factory; pickled to the workers."""

    ports_per_worker = 1
    nonempty_inputs = ("train",)
    default_objective = ""

    def __init__(
        self,
        *,
        num_boost_round: int = 100,
        objective: str | None = None,
        params: dict[str, Any] | None = None,
        scaling: ScalingRequest | None = None,
        callbacks: list[Any] | None = None,
        n_estimators: int | None = None,
        label_col: str | None = None,
        input_cols: list[str] | None = None,
    ) -> None:
        """``n_estimators`` is the reference's name for ``num_boost_round`` (it wins when given);
        ``label_col`` / ``input_cols`` are used when a task's options do not name them."""
        if n_estimators is not None:
            num_boost_round = int(n_estimators)
        if num_boost_round < 1:
            raise ConfigError(f"num_boost_round / n_estimators must be at least 1, got {num_boost_round}")
        self.label_col = label_col
        self.input_cols = list(input_cols) if input_cols else None
        self.num_boost_round = num_boost_round
        self.objective = objective or self.default_objective
        self.params = dict(params or {})
        self._scaling = scaling or ScalingRequest()
        self.callbacks = list(callbacks or [])

    @property
    def scaling(self) -> ScalingRequest:
        return self._scaling

    def model_of(self, result: Any) -> Any:
        """The booster, out of ``collect``'s ``(booster, evaluation history)``."""
        return result[0]

    def columns(self, task: TrainTask) -> tuple[list[str], str]:
        """Worker: ``(feature columns, label column)`` of this task: the task's ``input_cols``,
        else the backend's, else every numeric or boolean column but the label."""
        from shoal.train.tabular_data import feature_columns

        label_col = task.options.get("label_col") or self.label_col
        if not label_col:
            raise ConfigError("training needs label_col=, the name of the column to predict")
        input_cols = task.options.get("input_cols") or self.input_cols
        return feature_columns(task.shards["train"].get_shard().schema(), input_cols, label_col), label_col


class TabularEstimator(ABC):
    """Base of the booster estimators; a subclass names its framework and builds its backend."""

    #: the name of the ``shoal_estimators`` contribution that trains it
    estimator_name: str = ""
    default_objective: str = ""

    def __init__(
        self,
        n_estimators: int | None = 100,
        objective: str | None = None,
        params: dict[str, Any] | None = None,
        scaling_config: TabularScalingConfig | None = None,
        callbacks: list[Any] | None = None,
        *,
        compute_pool: str | None = None,
        stage_name: str | None = None,
    ) -> None:
        """``compute_pool`` and ``stage_name`` (shoal's own): where a ``fit`` outside a job runs,
        and the stage its training job keeps its payload, logs and result on (default: the
        managed stage ``SHOAL_TRAINING``; on a pool whose nodes are on several hosts, a stage on an
        object store, docs/pools.md)."""
        self.n_estimators = 100 if n_estimators is None else int(n_estimators)
        if self.n_estimators < 1:
            raise ConfigError(f"n_estimators must be at least 1, got {n_estimators}")
        self.objective = objective or self.default_objective
        self.params = dict(params or {})
        self.scaling_config = scaling_config or TabularScalingConfig()
        self.callbacks = list(callbacks or [])
        self.compute_pool = compute_pool
        self.stage_name = stage_name
        self._booster: Any = None
        self._eval_results: dict[str, dict[str, list[float]]] = {}

    # -- what a subclass provides ---------------------------------------------------------

    def _backend_options(self) -> dict[str, Any]:
        """Options for the plugin factory: rounds, objective and params (keys in params win)."""
        params = dict(self.params)
        rounds = int(params.pop("n_estimators", params.pop("num_boost_round", self.n_estimators)))
        objective = params.pop("objective", self.objective)
        return {
            "num_boost_round": rounds,
            "objective": objective,
            "params": params,
            "scaling": self.scaling_config.to_request(),
            "callbacks": self.callbacks,
        }

    # -- public API -----------------------------------------------------------------------

    def fit(
        self,
        dataset: Any,
        input_cols: list[str] | None = None,
        label_col: str | None = None,
        eval_set: Any = None,
        verbose_eval: bool | int | None = None,
    ) -> Any:
        """Train across the job's workers (see the class docstring); return the booster."""
        from shoal.train.runner import run_training

        if not label_col:
            raise ConfigError("fit needs label_col=, the name of the column to predict")
        train = _sharded(dataset, "dataset")
        columns = _columns(train)
        if label_col not in columns:
            raise ConfigError(
                f"label_col {label_col!r} is not a column of the dataset; "
                f"its columns are: {', '.join(columns)}"
            )
        features = list(input_cols) if input_cols else [c for c in columns if c != label_col]
        missing = [c for c in features if c not in columns]
        if missing:
            raise ConfigError(
                f"input_cols {missing} are not columns of the dataset; its columns are: {', '.join(columns)}"
            )
        if label_col in features:
            raise ConfigError(
                f"label_col {label_col!r} is also listed in input_cols; remove it from input_cols"
            )
        inputs: dict[str, Any] = {"train": train}
        if eval_set is not None:
            evaluation = _sharded(eval_set, "eval_set")
            absent = [c for c in [*features, label_col] if c not in _columns(evaluation)]
            if absent:
                raise ConfigError(f"eval_set lacks column(s) {absent} that training uses")
            inputs["eval"] = evaluation
        name, backend = build_backend(self.estimator_name, **self._backend_options())
        booster, history = run_training(
            backend,
            inputs,
            {"input_cols": features, "label_col": label_col, "verbose_eval": verbose_eval},
            compute_pool=self.compute_pool,
            stage_name=self.stage_name,
            name=name,
            user_code=self.callbacks,
        )
        self._booster, self._eval_results = booster, history
        self.input_cols, self.label_col = features, label_col
        return booster

    def get_booster(self) -> Any:
        """The booster of the last ``fit``; ``RuntimeError`` before one."""
        if self._booster is None:
            raise RuntimeError(f"{type(self).__name__}.get_booster(): call fit(...) first")
        return self._booster

    def get_eval_results(self) -> dict[str, dict[str, list[float]]]:
        """Per-iteration metrics: ``{"train": {"rmse": [...]}, "eval": {...}}`` (``eval`` with eval_set)."""
        self.get_booster()
        return self._eval_results

    @abstractmethod
    def predict(self, data: Any) -> Any:
        """Predict on the caller's side (not distributed): a DataFrame/DataConnector or an array."""


def _sharded(data: Any, what: str) -> Any:
    from shoal.data.sharded import as_sharded

    if data is None:
        raise ConfigError(f"fit needs a {what}")
    return as_sharded(data)


def _columns(sharded: Any) -> list[str]:
    connector = sharded.connector
    if connector is None:
        raise ConfigError("pass the whole ShardedDataConnector, not one worker's shard")
    return list(connector.columns)


def table_of(data: Any, columns: list[str]) -> Any:
    """Driver side: a numpy feature matrix for ``predict`` from a frame, connector or array."""
    import numpy as np

    from shoal.data import DataConnector

    if isinstance(data, np.ndarray):
        return data
    connector = data if isinstance(data, DataConnector) else DataConnector.from_dataframe(data)
    table = connector.to_arrow()
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ConfigError(f"predict: the data lacks the input column(s) {missing} the model was trained on")
    return np.column_stack(
        [table.column(c).to_numpy(zero_copy_only=False).astype(np.float32) for c in columns]
    )

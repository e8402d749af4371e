"""Distributed training, owned by the core: worker placement, ranks, rendezvous and shards.

Estimator plugins (``shoal.plugins.xgboost``, ``shoal.plugins.lightgbm``, ``shoal.plugins.torch``,
or a third party's) contribute an :class:`EstimatorBackend` through the ``shoal_estimators`` hook;
:func:`run_training` places its workers on the job's nodes and runs it. See ``docs/training.md``.

Importing this package imports no framework and not Ray. Runs on the driver and on workers.
"""

from __future__ import annotations

from shoal.errors import TrainingError
from shoal.train.backend import EstimatorBackend, TrainTask, build_backend
from shoal.train.ranks import RankInfo, WorkerSlot, current_rank
from shoal.train.runner import run_training
from shoal.train.scaling import ScalingRequest

__all__ = [
    "EstimatorBackend",
    "RankInfo",
    "ScalingRequest",
    "TrainTask",
    "TrainingError",
    "WorkerSlot",
    "build_backend",
    "current_rank",
    "fit",
    "run_training",
]


def fit(estimator: str, data: object, *, compute_pool: str | None = None, **options: object) -> object:
    """Train with the estimator plugin called ``estimator`` (by name or alias).

    ``data`` is anything ``DataConnector.from_dataframe`` takes, a ``DataConnector`` or a
    ``ShardedDataConnector``; each worker gets its own shard. ``options`` go to the plugin's
    factory. Returns what the backend's ``collect`` returns (its model).
    """
    from shoal.data.sharded import as_sharded

    name, backend = build_backend(estimator, **options)
    return run_training(backend, {"train": as_sharded(data)}, compute_pool=compute_pool, name=name)

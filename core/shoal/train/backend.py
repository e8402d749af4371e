"""What an estimator plugin implements: a driver side and a worker side, as Ray Train splits it.

An ``EstimatorSpec.factory(**options)`` returns an :class:`EstimatorBackend`. The core scheduler
(:mod:`shoal.train.runner`) then:

1. resolves :attr:`EstimatorBackend.scaling` against the job's nodes and starts the workers;
2. calls :meth:`EstimatorBackend.start` **on the driver** with the workers' slots (ranks, node
   addresses, free ports reserved on each worker's node), then, when the backend has one,
   :meth:`EstimatorBackend.start_on_rank0` **in rank 0's worker**; what they return is sent to
   every worker;
3. on **each worker**, enters :meth:`EstimatorBackend.worker_context` and calls
   :meth:`EstimatorBackend.train` with this rank's :class:`TrainTask` (its own data shards only);
4. calls :meth:`EstimatorBackend.collect` **on the driver** with every rank's return value, and
   :meth:`EstimatorBackend.shutdown` whatever happened. A backend that keeps the default
   ``collect`` (rank 0's value) and trains in a job that :func:`shoal.train.runner.run_training`
   submitted has rank 0's value unpickled only in the caller's process
   (:mod:`shoal.train.results`): the job's driver does not import the framework for it.

The backend object is pickled (cloudpickle) to the workers, so keep framework imports inside
methods: importing the plugin must not import the framework.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.train.ranks import RankInfo, WorkerSlot
from shoal.train.scaling import ScalingRequest


@dataclass
class TrainTask:
    """One rank's share of the work and the fit options.

    ``shards`` maps each input's name to what this rank gets: for a
    :class:`~shoal.data.ShardedDataConnector`, a copy holding only this rank's shard (its
    ``get_shard()`` returns it); any other value is passed to every rank as it is.
    """

    shards: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


class EstimatorBackend(ABC):
    """Subclass in a plugin; see the module docstring for when each method runs and where."""

    #: free TCP ports the core reserves on each worker's node (rank 0's first is the master port)
    ports_per_worker: int = 1
    #: inputs every rank must get rows of (checked on the driver before the workers start)
    nonempty_inputs: tuple[str, ...] = ()
    #: modules every worker imports to train (the framework) and the driver imports for
    #: :meth:`start`; the core imports them in the background while the workers start
    #: (:mod:`shoal.train.preload`)
    worker_modules: tuple[str, ...] = ()
    driver_modules: tuple[str, ...] = ()
    #: optional packages ``worker_modules`` import when installed that training never uses,
    #: hidden while the worker preloads them (:func:`shoal.train.preload.hidden_packages`)
    worker_imports_hidden: tuple[str, ...] = ()

    @property
    def scaling(self) -> ScalingRequest:
        """How many workers and resources (default: one worker per node, all its CPUs)."""
        return ScalingRequest()

    def start(self, slots: Sequence[WorkerSlot]) -> Any:
        """Driver, before training: start the framework's rendezvous; the result goes to workers."""
        return None

    def start_on_rank0(self, slots: Sequence[WorkerSlot], setup: Any) -> Any:
        """Rank 0's worker, after :meth:`start` (whose result is ``setup``) and before any rank
        trains: start what runs beside the workers (XGBoost's tracker, as Ray Train does), so
        the driver needs no framework import; the result replaces ``setup`` for every rank.
        This backend object stays in rank 0's worker for its :meth:`train`. Called only when a
        backend overrides it."""
        return setup

    @contextlib.contextmanager
    def worker_context(self, rank: RankInfo, setup: Any) -> Iterator[None]:
        """Worker, around :meth:`train`: join the framework's collective, leave it afterwards."""
        yield

    @abstractmethod
    def train(self, rank: RankInfo, task: TrainTask, setup: Any) -> Any:
        """Worker: train on ``task.shards``; the return value is sent back to the driver."""

    def collect(self, results: list[Any]) -> Any:
        """Driver: combine the ranks' results (ordered by rank); default: rank 0's."""
        return results[0]

    def model_of(self, collected: Any) -> Any:
        """The model in what :meth:`collect` returned (default: all of it). Many-model training
        saves this per partition."""
        return collected

    def shutdown(self) -> None:  # noqa: B027 - optional hook, empty by default
        """Driver, always after training (success or not): stop what :meth:`start` started."""


def build_backend(estimator: str, **options: Any) -> tuple[str, EstimatorBackend]:
    """Driver: ``(name, backend)`` from the estimator plugin called ``estimator`` (name or alias)."""
    from shoal import hooks
    from shoal.errors import PluginError
    from shoal.extras import require

    spec = hooks.get_estimator(estimator)
    require(spec.frameworks, f"the {spec.name!r} estimator")  # before any pool or job is touched
    backend = spec.factory(**options)
    if not isinstance(backend, EstimatorBackend):
        raise PluginError(
            f"estimator {spec.name!r}: its factory returned {type(backend).__name__}, "
            f"not a shoal.train.EstimatorBackend"
        )
    return spec.name, backend

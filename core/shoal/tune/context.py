"""What a trial's ``train_func`` sees: :class:`TunerContext` and :func:`get_tuner_context`.

Inside ``train_func`` (which takes no arguments, as in the reference):

    context = shoal.tune.get_tuner_context()
    params = context.get_hyper_params()        # this trial's parameters
    train = context.get_dataset_map()["train"]  # the DataConnectors given to Tuner.run
    context.report({"rmse": 0.41}, model=booster)

Each ``report`` records the metrics (and the model, when given) on the run's stage and hands
the metrics to Ray Tune, so the search and early stopping see them. A trial may report once at
the end, or after every epoch or boosting round (then ASHA can stop it early).

Runs in a trial, on any node of the tuning job.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol


class TrialReporter(Protocol):
    """Where a trial's reports go (:class:`shoal.tune.trial.TrialRun`)."""

    def report(self, metrics: Mapping[str, Any], model: Any = None) -> None: ...


class TunerContext:
    """One trial's parameters, data and reporting (the reference's ``TunerContext``)."""

    def __init__(
        self,
        hyper_params: Mapping[str, Any],
        dataset_map: Mapping[str, Any],
        reporter: TrialReporter,
        trial_id: str = "",
    ) -> None:
        self._hyper_params = dict(hyper_params)
        self._dataset_map = dict(dataset_map)
        self._reporter = reporter
        self.trial_id = trial_id

    def get_hyper_params(self) -> dict[str, Any]:
        """This trial's parameters: one point of the search space (fixed values included)."""
        return dict(self._hyper_params)

    def get_dataset_map(self) -> dict[str, Any]:
        """The ``dataset_map`` given to ``Tuner.run``: name -> DataConnector."""
        return dict(self._dataset_map)

    def report(self, metrics: Mapping[str, Any], model: Any = None) -> None:
        """Record ``metrics`` (it must hold the metric the tuner ranks by) and, when given, the
        ``model`` this trial produced; the last report is the trial's result."""
        self._reporter.report(metrics, model)


_current = threading.local()
#: the trial of this process (a trial's actor runs one trial at a time), for threads it starts
_process: list[TunerContext | None] = [None]


def set_tuner_context(context: TunerContext | None) -> None:
    """Make ``context`` the one :func:`get_tuner_context` returns in this process (None clears it)."""
    _current.context = context
    _process[0] = context


def get_tuner_context() -> TunerContext:
    """The context of the trial running in this thread; only inside a ``train_func`` that
    ``Tuner.run`` calls."""
    context = getattr(_current, "context", None) or _process[0]
    if context is None:
        raise RuntimeError(
            "get_tuner_context() is only available inside the train_func that shoal.tune.Tuner.run "
            "calls for each trial"
        )
    return context

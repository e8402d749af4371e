"""How a tuning run is set up: the reference's :class:`TunerConfig`, and :class:`ASHA` early stopping.

:meth:`TunerConfig.check` refuses a bad configuration (with what was wrong and what to do)
before anything is submitted or reserved, and works out how many trials the run has.

Runs on the driver.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shoal.errors import ConfigError
from shoal.tune.search import GridSearch, RandomSearch, SearchAlgorithm
from shoal.tune.space import check_space, grid_points

#: the resources a trial may ask for (Ray's logical resources)
TRIAL_RESOURCES = ("CPU", "GPU", "memory")


@dataclass(frozen=True)
class ASHA:
    """Early stopping through Ray Tune's ASHA scheduler (beyond the reference).

    A trial that reports its metric again and again (once per epoch or boosting round) is
    stopped when it falls behind the others at ``grace_period``, ``grace_period *
    reduction_factor``, ... reports, up to ``max_t``. Stopped trials are recorded as STOPPED with
    the metrics they had reported."""

    max_t: int = 100
    grace_period: int = 1
    reduction_factor: float = 4

    def check(self) -> None:
        if not (isinstance(self.max_t, int) and isinstance(self.grace_period, int)):
            raise ConfigError(f"ASHA max_t and grace_period are numbers of reports, got {self!r}")
        if not 1 <= self.grace_period <= self.max_t:
            raise ConfigError(f"ASHA needs 1 <= grace_period <= max_t, got {self!r}")
        if not self.reduction_factor > 1:
            raise ConfigError(f"ASHA reduction_factor must be above 1, got {self.reduction_factor!r}")


@dataclass(frozen=True)
class TunerConfig:
    """The reference's ``TunerConfig``.

    * ``metric`` / ``mode``: the reported metric that ranks the trials, and whether lower
      (``"min"``) or higher (``"max"``) is better;
    * ``search_alg``: :class:`~shoal.tune.search.RandomSearch` (default),
      :class:`~shoal.tune.search.GridSearch` or :class:`~shoal.tune.search.BayesOpt`;
    * ``num_trials``: how many trials (random and Bayesian searches; required there). A grid
      search runs each of its points once, so it is left out or equals the grid's size;
    * ``max_concurrent_trials``: at most this many trials at once (default: as many as the
      nodes' resources hold);
    * ``resource_per_trial``: what one trial reserves, e.g. ``{"CPU": 2}`` (default one CPU);
      a trial that trains with a distributed estimator reserves its workers on top of it;
    * ``early_stopping``: :class:`ASHA` to stop trials that fall behind (beyond the reference);
    * ``persist_data_in_object_store`` and ``uses_snowflake_trainer``: the reference's switches,
      accepted for its scripts. shoal always sends ``dataset_map`` to the cluster once, through
      Ray's object store, and a trial's distributed estimator always reserves its own workers
      (docs/decisions.md).
    """

    metric: str
    mode: Literal["min", "max"]
    search_alg: SearchAlgorithm = field(default_factory=RandomSearch)
    num_trials: int | None = None
    max_concurrent_trials: int | None = None
    resource_per_trial: Mapping[str, float] | None = None
    early_stopping: ASHA | None = None
    persist_data_in_object_store: bool = False
    uses_snowflake_trainer: bool = False

    def resources(self) -> dict[str, float]:
        """What one trial reserves, with the default filled in."""
        return dict(self.resource_per_trial) if self.resource_per_trial else {"CPU": 1.0}

    def check(self, search_space: object) -> tuple[dict[str, Any], int]:
        """The checked search space and the number of trials; raises ConfigError."""
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError(f"TunerConfig metric must name a reported metric, got {self.metric!r}")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"TunerConfig mode must be 'min' or 'max', got {self.mode!r}")
        if not isinstance(self.search_alg, SearchAlgorithm):
            raise ConfigError(
                f"TunerConfig search_alg must be GridSearch(), RandomSearch() or BayesOpt() from "
                f"shoal.tune.search, got {self.search_alg!r}"
            )
        grid = isinstance(self.search_alg, GridSearch)
        space = check_space(search_space, grid=grid)
        trials = self._trials(space, grid)
        if self.max_concurrent_trials is not None and (
            not isinstance(self.max_concurrent_trials, int) or self.max_concurrent_trials < 1
        ):
            raise ConfigError(
                f"TunerConfig max_concurrent_trials must be a whole number of at least 1 (or None), "
                f"got {self.max_concurrent_trials!r}"
            )
        self._check_resources()
        if self.early_stopping is not None:
            if not isinstance(self.early_stopping, ASHA):
                raise ConfigError(
                    f"TunerConfig early_stopping takes shoal.tune.ASHA(...), got {self.early_stopping!r}"
                )
            self.early_stopping.check()
        return space, trials

    def _trials(self, space: dict[str, Any], grid: bool) -> int:
        count = self.num_trials
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
            raise ConfigError(f"TunerConfig num_trials must be a whole number of at least 1, got {count!r}")
        if grid:
            points = len(grid_points(space))
            if count is not None and count != points:
                raise ConfigError(
                    f"the grid has {points} point(s) and GridSearch runs each once, but num_trials="
                    f"{count}; leave num_trials out, or use RandomSearch to draw {count} trial(s)"
                )
            return points
        if count is None:
            raise ConfigError(
                f"TunerConfig needs num_trials with {type(self.search_alg).__name__}: how many "
                f"parameter sets to try (e.g. num_trials=20)"
            )
        return count

    def _check_resources(self) -> None:
        for name, amount in self.resources().items():
            if name not in TRIAL_RESOURCES:
                raise ConfigError(
                    f"TunerConfig resource_per_trial has {name!r}; the resources a trial can reserve "
                    f"are {', '.join(TRIAL_RESOURCES)}"
                )
            if (
                isinstance(amount, bool)
                or not isinstance(amount, (int, float))
                or not (math.isfinite(amount) and amount >= 0)
            ):
                raise ConfigError(
                    f"TunerConfig resource_per_trial[{name!r}] must be a number of 0 or more, got {amount!r}"
                )
        if not any(self.resources().values()):
            raise ConfigError(
                "TunerConfig resource_per_trial reserves nothing; give a trial at least some CPU"
            )

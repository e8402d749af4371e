"""The reference's search algorithms: :class:`GridSearch`, :class:`RandomSearch`, :class:`BayesOpt`.

Each is a small frozen description; Ray Tune does the searching (:mod:`shoal.runtime.tune_runner`
turns these into Ray Tune's search algorithms):

* :class:`GridSearch`: every point of the grid exactly once (Ray Tune's ``grid_search``);
* :class:`RandomSearch`: ``num_trials`` independent draws (Ray Tune's basic variant generator,
  seeded with ``random_state``);
* :class:`BayesOpt`: a model-based search that proposes each trial from the results so far,
  through Optuna's TPE sampler (``ray.tune.search.optuna.OptunaSearch``); Optuna comes with the
  ``shoal[tune]`` extra.

Runs on the driver (described) and in the tuning job (searched).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar


class SearchAlgorithm:
    """Base of the search algorithms (the reference's ``SearchAlgorithm``)."""

    #: the Python modules the search needs on the tuning job's node, beyond Ray Tune
    modules: ClassVar[tuple[str, ...]] = ()


@dataclass(frozen=True)
class GridSearch(SearchAlgorithm):
    """Every combination of the search space's lists, each run once."""


@dataclass(frozen=True)
class RandomSearch(SearchAlgorithm):
    """``num_trials`` random draws from the search space; ``random_state`` makes them repeatable."""

    random_state: int | None = None


@dataclass(frozen=True)
class BayesOpt(SearchAlgorithm):
    """Each trial's parameters proposed from the results so far (Optuna's TPE sampler).

    ``utility_kwargs`` is the reference's acquisition-function setting (for its
    Gaussian-process optimiser); TPE has no such setting, so it is accepted and not used
    (docs/decisions.md). ``random_state`` seeds the sampler."""

    utility_kwargs: dict[str, Any] | None = None
    random_state: int | None = None
    modules: ClassVar[tuple[str, ...]] = ("optuna",)

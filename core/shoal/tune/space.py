"""A tuner's search space: the reference's sampling functions, plain lists, and fixed values.

``search_space`` maps each hyper-parameter to one of:

* a sampling function: :class:`Uniform`, :class:`LogUniform` or :class:`RandInt` (also written
  ``uniform(0.01, 0.1)``, ``loguniform(...)``, ``randint(...)``, as the reference's example does);
* a list: the values a grid search walks through, or a choice among them for the other searches;
* anything else: a fixed value, passed to every trial as it is.

:func:`check_space` refuses a bad space before anything is submitted; :func:`grid_points` lists
a grid's points in order. Translating a space into Ray Tune's domains happens on the cluster
(:mod:`shoal.runtime.tune_runner`).

Runs on the driver.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shoal.errors import ConfigError


class SamplingFunction(ABC):
    """A distribution a hyper-parameter is drawn from (the reference's base class)."""

    @abstractmethod
    def check(self, name: str) -> None:
        """Raise ConfigError when the distribution's bounds are not valid for ``name``."""


@dataclass(frozen=True)
class Uniform(SamplingFunction):
    """A float drawn uniformly from ``[lower, upper)``."""

    lower: float
    upper: float

    def check(self, name: str) -> None:
        _check_bounds(self, name)


@dataclass(frozen=True)
class LogUniform(SamplingFunction):
    """A float whose logarithm is uniform in ``[log(lower), log(upper))``; both bounds above 0."""

    lower: float
    upper: float

    def check(self, name: str) -> None:
        _check_bounds(self, name)
        if self.lower <= 0:
            raise ConfigError(
                f"search_space[{name!r}]: LogUniform needs bounds above 0, got lower={self.lower!r}; "
                f"use Uniform for a range that reaches 0"
            )


@dataclass(frozen=True)
class RandInt(SamplingFunction):
    """A whole number drawn uniformly from ``[lower, upper)`` (``upper`` excluded, as in
    ``numpy.random.randint`` and Ray Tune)."""

    lower: int
    upper: int

    def check(self, name: str) -> None:
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (self.lower, self.upper)):
            raise ConfigError(
                f"search_space[{name!r}]: RandInt takes whole-number bounds, got "
                f"({self.lower!r}, {self.upper!r}); use Uniform for floats"
            )
        _check_bounds(self, name)


def uniform(lower: float, upper: float) -> Uniform:
    """``Uniform(lower, upper)``, the spelling of the reference's example (``tune.uniform``)."""
    return Uniform(lower, upper)


def loguniform(lower: float, upper: float) -> LogUniform:
    """``LogUniform(lower, upper)`` (``tune.loguniform``)."""
    return LogUniform(lower, upper)


def randint(lower: int, upper: int) -> RandInt:
    """``RandInt(lower, upper)`` (``tune.randint``), ``upper`` excluded."""
    return RandInt(lower, upper)


def _check_bounds(function: Uniform | LogUniform | RandInt, name: str) -> None:
    kind = type(function).__name__
    for bound in (function.lower, function.upper):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not math.isfinite(bound):
            raise ConfigError(
                f"search_space[{name!r}]: {kind} bounds must be finite numbers, got "
                f"({function.lower!r}, {function.upper!r})"
            )
    if not function.lower < function.upper:
        raise ConfigError(
            f"search_space[{name!r}]: {kind} needs lower < upper, got "
            f"({function.lower!r}, {function.upper!r})"
        )


def check_space(space: object, *, grid: bool) -> dict[str, Any]:
    """The search space as a plain dict, or a :class:`~shoal.errors.ConfigError` saying what is
    wrong. ``grid``: a grid search, which can only walk through lists and fixed values."""
    if not isinstance(space, Mapping) or not space:
        raise ConfigError(
            f"search_space must be a non-empty dict of hyper-parameter name to values, got {space!r}"
        )
    checked: dict[str, Any] = {}
    for name, value in space.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"search_space keys are hyper-parameter names (strings), got {name!r}")
        if isinstance(value, SamplingFunction):
            if grid:
                raise ConfigError(
                    f"search_space[{name!r}] is {value!r}, but GridSearch walks through lists of "
                    f"values only; give a list (e.g. [0.01, 0.1]) or use RandomSearch/BayesOpt"
                )
            value.check(name)
        elif isinstance(value, (list, tuple)):
            if not value:
                raise ConfigError(f"search_space[{name!r}] is an empty list; give at least one value")
            value = list(value)
        checked[name] = value
    return checked


def grid_points(space: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every point of a grid, in order: the product of the lists (the first key varies
    slowest); fixed values are in every point."""
    names = list(space)
    axes = [space[n] if isinstance(space[n], list) else [space[n]] for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]

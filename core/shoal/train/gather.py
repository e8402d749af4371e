"""All-gather between the ranks of one training, before the framework's own collective exists.

A backend that needs every rank's (small) value to set up its framework calls :func:`all_gather`
on every rank, in the same order: each call returns the list of the ranks' values, in rank
order. LightGBM's backend gathers a sample of each rank's rows so that every rank bins its
features with the same cuts, taken from all the data (``shoal.plugins.lightgbm.bins``).

The worker runtime installs the gatherer while a rank trains (:func:`set_gatherer`; on Ray, a
small actor of the worker group collects the values). Outside a training worker, or in a world
of one (many-model training's per-partition fit), a call returns ``[value]``.

Runs on training workers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: how long a rank waits for the others' values before it fails, saying which ranks were missing
GATHER_TIMEOUT_S = 600.0

_gatherer: dict[str, Callable[[Any, float], list[Any]] | None] = {"gatherer": None}


def set_gatherer(gatherer: Callable[[Any, float], list[Any]] | None) -> None:
    """Worker side: how this process gathers while it trains (None: it is alone)."""
    _gatherer["gatherer"] = gatherer


def all_gather(value: Any, timeout_s: float = GATHER_TIMEOUT_S) -> list[Any]:
    """Every rank's ``value``, in rank order (``[value]`` when this process trains alone)."""
    gatherer = _gatherer["gatherer"]
    if gatherer is None:
        return [value]
    return gatherer(value, timeout_s)

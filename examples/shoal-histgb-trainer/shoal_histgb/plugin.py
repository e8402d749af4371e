"""Hook implementation of the ``histgb`` trainer plugin (imports no scikit-learn).

This module is what the entry point names. shoal imports it on the driver when the plugin
manager loads, and on every training worker when the worker rebuilds the driver's plugin
manager, so it must stay cheap: the framework is imported inside functions only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shoal.contributions import EstimatorSpec
from shoal.hookspecs import hookimpl


def make_backend(**options: Any) -> Any:
    """The ``EstimatorSpec.factory``: validate ``options`` and build the backend (on the driver)."""
    from shoal_histgb.backend import HistGBBackend

    return HistGBBackend(**options)


@hookimpl
def shoal_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="histgb",
        factory=make_backend,
        aliases=("sklearn-histgb",),
        frameworks=("sklearn",),
    )

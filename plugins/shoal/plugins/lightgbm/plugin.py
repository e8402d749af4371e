"""Hook implementation of the LightGBM estimator plugin (imports no framework).

Runs on the driver and, after the plugin manager is rebuilt, on training workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shoal.contributions import EstimatorSpec
from shoal.hookspecs import hookimpl


def make_backend(**options: Any) -> Any:
    from shoal.plugins.lightgbm.backend import LightGBMBackend

    return LightGBMBackend(**options)


@hookimpl
def shoal_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="lightgbm",
        factory=make_backend,
        aliases=("lgbm",),
        frameworks=("lightgbm",),
        supports_gpu=True,
        model_serde="lightgbm",
    )

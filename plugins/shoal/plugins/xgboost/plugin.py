"""Hook implementation of the XGBoost estimator plugin (imports no framework).

Runs on the driver and, after the plugin manager is rebuilt, on training workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shoal.contributions import EstimatorSpec
from shoal.hookspecs import hookimpl


def make_backend(**options: Any) -> Any:
    from shoal.plugins.xgboost.backend import XGBoostBackend

    return XGBoostBackend(**options)


@hookimpl
def shoal_estimators() -> Iterator[EstimatorSpec]:
    yield EstimatorSpec(
        name="xgboost",
        factory=make_backend,
        aliases=("xgb",),
        frameworks=("xgboost",),
        supports_gpu=True,
        model_serde="xgboost",
    )

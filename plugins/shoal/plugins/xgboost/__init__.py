"""The XGBoost estimator plugin: ``XGBEstimator`` and ``XGBScalingConfig``.

Registered through the ``shoal`` entry-point group (``xgboost = shoal.plugins.xgboost.plugin``),
exactly as a third-party trainer is. Importing this package does not import xgboost: the names
below load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["XGBEstimator", "XGBScalingConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from shoal.plugins.xgboost import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The LightGBM estimator plugin: ``LightGBMEstimator`` and ``LightGBMScalingConfig``.

Registered through the ``shoal`` entry-point group (``lightgbm = shoal.plugins.lightgbm.plugin``),
exactly as a third-party trainer is. Importing this package does not import lightgbm: the names
below load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LightGBMEstimator", "LightGBMScalingConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from shoal.plugins.lightgbm import estimator

        return getattr(estimator, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""shoal-histgb-trainer: an example third-party trainer plugin for shoal.

It registers the estimator ``histgb`` (entry point ``histgb = "shoal_histgb.plugin"`` in the
``shoal`` group). ``shoal.train.fit("histgb", df, label_col="Y")`` fits one scikit-learn
``HistGradientBoostingRegressor`` (or ``...Classifier`` with ``task="classification"``) per
training worker, each on its own shard of the rows, and returns an :class:`AveragingEnsemble`
of them (bagging).

Importing this package imports neither scikit-learn nor Ray.
"""

from __future__ import annotations

from shoal_histgb.ensemble import AveragingEnsemble

__all__ = ["AveragingEnsemble"]
__version__ = "0.1.0"

"""``LightGBMEstimator``: LightGBM's data-parallel training across the job's workers.

.. code-block:: python

    from shoal.plugins.lightgbm import LightGBMEstimator, LightGBMScalingConfig

    booster = LightGBMEstimator(n_estimators=200, params={"num_leaves": 63},
                                scaling_config=LightGBMScalingConfig(num_workers=2)
                                ).fit(df, input_cols=[...], label_col="Y")   # a lightgbm.Booster

Runs on the driver; training runs on the workers (see ``shoal.plugins.lightgbm.backend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.train.tabular import TabularEstimator, TabularScalingConfig, table_of


@dataclass
class LightGBMScalingConfig(TabularScalingConfig):
    """``num_workers=-1`` (one per node), ``num_cpu_per_worker=-1`` (all), ``use_gpu=None`` (auto)."""


class LightGBMEstimator(TabularEstimator):
    """Distributed LightGBM with the reference product's constructor and ``fit`` signature."""

    estimator_name = "lightgbm"
    default_objective = "regression"

    def __init__(
        self,
        n_estimators: int = 100,
        objective: str = "regression",
        params: dict[str, Any] | None = None,
        scaling_config: LightGBMScalingConfig | None = None,
        callbacks: list[Any] | None = None,
        *,
        compute_pool: str | None = None,
        stage_name: str | None = None,
    ) -> None:
        super().__init__(
            n_estimators,
            objective,
            params,
            scaling_config or LightGBMScalingConfig(),
            callbacks,
            compute_pool=compute_pool,
            stage_name=stage_name,
        )

    def predict(self, data: Any) -> Any:
        """Predict on the caller's side with the trained booster (a frame, connector or array)."""
        return self.get_booster().predict(table_of(data, self.input_cols))

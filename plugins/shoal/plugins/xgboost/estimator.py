"""``XGBEstimator``: XGBoost trained across the job's workers with xgboost's own collective.

.. code-block:: python

    from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig

    estimator = XGBEstimator(n_estimators=200, params={"max_depth": 6, "eta": 0.1},
                             scaling_config=XGBScalingConfig(num_workers=2))
    booster = estimator.fit(df, input_cols=[...], label_col="Y")   # an xgboost.Booster
    estimator.predict(test_df)

Runs on the driver; training runs on the workers (see ``shoal.plugins.xgboost.backend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shoal.train.tabular import TabularEstimator, TabularScalingConfig, table_of


@dataclass
class XGBScalingConfig(TabularScalingConfig):
    """``num_workers=-1`` (one per node), ``num_cpu_per_worker=-1`` (all), ``use_gpu=None`` (auto)."""


class XGBEstimator(TabularEstimator):
    """Distributed XGBoost with the reference product's constructor and ``fit`` signature."""

    estimator_name = "xgboost"
    default_objective = "reg:squarederror"

    def __init__(
        self,
        n_estimators: int | None = 100,
        objective: str | None = "reg:squarederror",
        params: dict[str, Any] | None = None,
        scaling_config: XGBScalingConfig | None = None,
        callbacks: list[Any] | None = None,
        *,
        compute_pool: str | None = None,
        stage_name: str | None = None,
        external_memory: bool | None = None,
    ) -> None:
        """``external_memory`` (shoal's own): each rank pages its quantised rows to its scratch
        folder (``ExtMemQuantileDMatrix``), for shards larger than a rank's memory; ``None``
        (default) does so when a shard's float32 rows would take over half of it."""
        super().__init__(
            n_estimators,
            objective,
            params,
            scaling_config or XGBScalingConfig(),
            callbacks,
            compute_pool=compute_pool,
            stage_name=stage_name,
        )
        self.external_memory = external_memory

    def _backend_options(self) -> dict[str, Any]:
        return {**super()._backend_options(), "external_memory": self.external_memory}

    def predict(self, data: Any) -> Any:
        """Predict on the caller's side with the trained booster (a DMatrix, frame or array)."""
        import xgboost

        booster = self.get_booster()
        if isinstance(data, xgboost.DMatrix):
            return booster.predict(data)
        return booster.predict(xgboost.DMatrix(table_of(data, self.input_cols)))

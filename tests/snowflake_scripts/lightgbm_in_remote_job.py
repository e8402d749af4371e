import json

from snowflake.ml.jobs import remote


@remote("ML_POOL", stage_name="payload_stage", target_instances=3)
def train_lgbm() -> dict:
    import numpy as np
    import pandas as pd
    from snowflake.ml.modeling.distributors.lightgbm import LightGBMEstimator, LightGBMScalingConfig

    rng = np.random.default_rng(1)
    x = rng.random((3000, 2))
    frame = pd.DataFrame(x, columns=["F1", "F2"]).assign(TARGET=2 * x[:, 0] - x[:, 1])
    estimator = LightGBMEstimator(
        n_estimators=30, params={"min_data_in_leaf": 5}, scaling_config=LightGBMScalingConfig(num_workers=3)
    )
    booster = estimator.fit(frame, input_cols=["F1", "F2"], label_col="TARGET")
    prediction = booster.predict(np.array([[0.5, 0.5]]))
    import os

    return {"instances": int(os.environ["SNOWFLAKE_JOBS_COUNT"]), "prediction": float(prediction[0])}


job = train_lgbm()
print("RESULT " + json.dumps({"status": job.wait(), **job.result()}))

import json

from snowflake.ml.jobs import remote
from snowflake.snowpark import Session

session = Session.builder.config("local_testing", True).create()


@remote("ML_POOL", stage_name="payload_stage", session=session, target_instances=2)
def train_xgb(rows: int) -> dict:
    import numpy as np
    import pandas as pd
    from snowflake.ml.data.data_connector import DataConnector
    from snowflake.ml.modeling.distributors.xgboost import XGBEstimator, XGBScalingConfig

    rng = np.random.default_rng(0)
    x = rng.random((rows, 3))
    frame = pd.DataFrame(x, columns=["A", "B", "C"]).assign(LABEL=x @ [1.0, 2.0, 3.0])
    estimator = XGBEstimator(
        n_estimators=20,
        params={"max_depth": 3},
        scaling_config=XGBScalingConfig(num_workers=2, num_cpu_per_worker=1),
    )
    booster = estimator.fit(
        DataConnector.from_dataframe(frame), input_cols=["A", "B", "C"], label_col="LABEL"
    )
    return {"rounds": booster.num_boosted_rounds(), "rmse": estimator.get_eval_results()["train"]["rmse"][-1]}


job = train_xgb(2000)
result = job.result()
print("RESULT " + json.dumps({"status": job.status, **result}))

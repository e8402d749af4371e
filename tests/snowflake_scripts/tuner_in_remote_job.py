import json

from snowflake.ml.jobs import remote
from snowflake.snowpark import Session

session = Session.builder.config("local_testing", True).create()


@remote("ML_POOL", stage_name="payload_stage", session=session, target_instances=3)
def tune_xgb(rows: int) -> dict:
    import numpy as np
    import pandas as pd
    from snowflake.ml.data.data_connector import DataConnector
    from snowflake.ml.modeling import tune
    from snowflake.ml.modeling.tune.search import RandomSearch

    def train_func():
        import xgboost as xgb

        tuner_context = tune.get_tuner_context()
        config = tuner_context.get_hyper_params()
        dm = tuner_context.get_dataset_map()
        train_df, test_df = dm["train"].to_pandas(), dm["test"].to_pandas()
        model = xgb.XGBRegressor(**config, n_jobs=1, random_state=42)
        model.fit(train_df[["A", "B", "C"]], train_df["LABEL"])
        error = model.predict(test_df[["A", "B", "C"]]) - test_df["LABEL"]
        tuner_context.report(metrics={"rmse": float(np.sqrt(np.mean(error**2)))}, model=model)

    rng = np.random.default_rng(0)
    x = rng.random((rows, 3))
    frame = pd.DataFrame(x, columns=["A", "B", "C"]).assign(LABEL=np.sin(6 * x[:, 0]) + x[:, 1])
    tuner = tune.Tuner(
        train_func=train_func,
        search_space={
            "n_estimators": tune.randint(10, 60),
            "max_depth": tune.randint(2, 6),
            "learning_rate": tune.loguniform(0.02, 0.3),
        },
        tuner_config=tune.TunerConfig(
            metric="rmse",
            mode="min",
            search_alg=RandomSearch(),
            num_trials=6,
            max_concurrent_trials=3,
        ),
    )
    dataset_map = {
        "train": DataConnector.from_dataframe(frame[:800]),
        "test": DataConnector.from_dataframe(frame[800:]),
    }
    results = tuner.run(dataset_map=dataset_map)
    best = results.best_result
    return {
        "trials": len(results.results),
        "statuses": sorted(set(results.results["status"])),
        "best_rmse": float(best["rmse"].iloc[0]),
        "worst_rmse": float(results.results["rmse"].max()),
        "model": type(results.best_model).__name__,
    }


job = tune_xgb(1000)
result = job.result()
print("RESULT " + json.dumps({"status": job.status, **result}))

import json

import numpy as np
from snowflake.ml.modeling.distributors.many_model import ManyModelInference, ManyModelTraining, PickleSerde
from snowflake.snowpark import Session

session = Session.builder.config("local_testing", True).create()
rows = [
    [region, float(x), float((i + 1) * x)] for i, region in enumerate(("EAST", "WEST")) for x in range(20)
]
df = session.create_dataframe(rows, schema=["REGION", "X", "Y"])


def train(data_connector, context):
    from sklearn.linear_model import LinearRegression

    pdf = data_connector.to_pandas()
    model = LinearRegression().fit(pdf[["X"]], pdf["Y"])
    model.trained_rows = len(pdf)
    return model


trainer = ManyModelTraining(train, "MODEL_STAGE", serde=PickleSerde())
training_run = trainer.run(partition_by="REGION", snowpark_dataframe=df, run_id="regional_models")
training_run.wait()
model = training_run.get_model("WEST")


def predict(data_connector, model, context):
    pdf = data_connector.to_pandas()
    pdf["PRED"] = model.predict(pdf[["X"]])
    context.upload_to_stage(pdf, "predictions.parquet", write_function=lambda d, p: d.to_parquet(p))


inference = ManyModelInference(predict, "MODEL_STAGE", training_run_id="regional_models")
scores = inference.run(partition_by="REGION", snowpark_dataframe=df, run_id="regional_scores")
scores.wait()
table = scores.query_artifacts("predictions.parquet").df()
print(
    "RESULT "
    + json.dumps(
        {
            "slope": round(float(model.coef_[0]), 3),
            "rows": model.trained_rows,
            "scored": len(table),
            "max_error": float(np.abs(table["PRED"] - table["Y"]).max()),
        }
    )
)

import json
import os
import tempfile

import pandas as pd
from snowflake.ml.modeling.distributors.distributed_partition_function.dpf import DPF
from snowflake.snowpark.context import get_active_session

from shoal.stages import create_stage  # how files reach a stage here (the reference uses session.file.put)

session = get_active_session()
stage = create_stage("@ML_DB.PUBLIC.STORE_FILES", exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    for store, sales in (("store_1", [10, 20, 30]), ("store_2", [1, 2, 3, 4])):
        path = os.path.join(tmp, f"{store}.parquet")
        pd.DataFrame({"SALES": sales}).to_parquet(path)
        stage.put(path, "stores")


def summarise(data_connector, context):
    frame = data_connector.to_pandas()
    store = context.partition_id.split("/")[-1].replace(".parquet", "")
    summary = pd.DataFrame({"STORE": [store], "ROWS": [len(frame)], "TOTAL": [int(frame["SALES"].sum())]})

    def append(session):
        session.create_dataframe(summary).write.mode("append").save_as_table("STORE_SUMMARY")

    context.with_session(append)


run = DPF(summarise, "@ML_DB.PUBLIC.DPF_STAGE").run_from_stage(
    stage_location="@ML_DB.PUBLIC.STORE_FILES/stores", run_id="store_summaries", file_pattern="*.parquet"
)
run.wait()
if run.status.value != "SUCCESS":
    errors = {pid: d.error for pid, d in run.partition_details.items()}
    print("RESULT " + json.dumps({"status": run.status.value, "errors": errors}))
    raise SystemExit(0)
rows = session.table("STORE_SUMMARY").sort("STORE").collect()
print(
    "RESULT "
    + json.dumps({"status": run.status.value, "rows": [[r["STORE"], r["ROWS"], r["TOTAL"]] for r in rows]})
)

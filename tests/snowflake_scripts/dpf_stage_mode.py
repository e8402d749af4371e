import json
import os
import tempfile

import pandas as pd
from snowflake.ml.modeling.distributors.distributed_partition_function.dpf import DPF

from shoal.stages import create_stage  # how files reach a stage here (the reference uses session.file.put)

stage = create_stage("@ML_DB.PUBLIC.RAW_FILES", exist_ok=True)
with tempfile.TemporaryDirectory() as tmp:
    for region in ("north", "south"):
        path = os.path.join(tmp, f"{region}.parquet")
        pd.DataFrame({"VALUE": range(5 if region == "north" else 7)}).to_parquet(path)
        stage.put(path, "regions")


def count_rows(data_connector, context):
    rows = len(data_connector.to_pandas())
    context.upload_to_stage(rows, "rows.pkl")


run = DPF(count_rows, "@ML_DB.PUBLIC.DPF_STAGE").run_from_stage(
    stage_location="@ML_DB.PUBLIC.RAW_FILES/regions", run_id="by_file", file_pattern="*.parquet"
)
run.wait()
rows = {
    pid.split("/")[-1]: d.stage_artifacts_manager.get("rows.pkl") for pid, d in run.partition_details.items()
}
print("RESULT " + json.dumps({"status": run.status.value, "rows": rows}))

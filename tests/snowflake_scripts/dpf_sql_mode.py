import json

from snowflake.ml.modeling.distributors.distributed_partition_function.dpf import DPF
from snowflake.ml.modeling.distributors.distributed_partition_function.entities import RunStatus
from snowflake.snowpark import Session

session = Session.builder.config("local_testing", True).create()
sales = session.create_dataframe(
    [[store, units] for store in ("S1", "S2", "S3") for units in range(1, 11)], schema=["STORE_ID", "UNITS"]
)


def summarize(data_connector, context):
    df = data_connector.to_pandas()
    print(f"Processing store {context.partition_id} with {len(df)} rows")
    context.upload_to_stage({"total": int(df["UNITS"].sum())}, "summary.pkl")


dpf = DPF(summarize, "@ML_DB.PUBLIC.DPF_STAGE")
run = dpf.run(partition_by="STORE_ID", snowpark_dataframe=sales, run_id="sales_by_store")
final = run.wait()
totals = {
    pid: d.stage_artifacts_manager.get("summary.pkl")["total"] for pid, d in run.partition_details.items()
}
print(
    "RESULT "
    + json.dumps(
        {"status": final == RunStatus.SUCCESS, "progress": sorted(run.get_progress()), "totals": totals}
    )
)

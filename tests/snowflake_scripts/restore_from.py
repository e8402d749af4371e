import json

from snowflake.ml.modeling.distributors.distributed_partition_function.dpf_run import DPFRun

run = DPFRun.restore_from(run_id="sales_by_store", stage_name="@ML_DB.PUBLIC.DPF_STAGE")
done = [p.partition_id for p in run.get_progress().get("DONE", [])]
print(
    "RESULT "
    + json.dumps({"status": run.status.value, "done": sorted(done), "log": run.partition_details["S2"].logs})
)

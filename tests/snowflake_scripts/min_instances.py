import json

from snowflake.ml.jobs import remote


@remote("ML_POOL", stage_name="payload_stage", target_instances=3, min_instances=2)
def count_nodes() -> int:
    import ray

    ray.init(address="auto")
    import os

    return int(os.environ["SNOWFLAKE_JOBS_COUNT"])


job = count_nodes()
try:
    remote("ML_POOL", stage_name="payload_stage", target_instances=5, min_instances=5)(count_nodes)
except ValueError as exc:
    refused = str(exc)
instances = job.result()
verbose = job.get_logs(verbose=True)
print(
    "RESULT "
    + json.dumps(
        {
            "instances": instances,
            "refused": refused,
            "requirement_met": "instance requirement met" in verbose,
            "mentions_ray": "ray" in verbose,
            "quiet_has_it": "instance requirement met" in job.get_logs(),
        }
    )
)

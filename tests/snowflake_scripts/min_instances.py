import json
import urllib.request

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
dashboard = job.get_ray_dashboard_url()
with urllib.request.urlopen(f"{dashboard}/api/version", timeout=30) as response:
    dashboard_version = json.load(response)["ray_version"]
print(
    "RESULT "
    + json.dumps(
        {
            "instances": instances,
            "refused": refused,
            "requirement_met": "instance requirement met" in verbose,
            "mentions_ray": "ray" in verbose,
            "quiet_has_it": "instance requirement met" in job.get_logs(),
            "dashboard": dashboard,
            "dashboard_version": dashboard_version,
            "same_dashboard": job.get_ray_dashboard_url() == dashboard,
        }
    )
)

import json

from snowflake.ml.jobs import list_jobs, remote


@remote("TEAM_POOL", stage_name="@ML_DB.PUBLIC.JOB_STAGE")
def where() -> str:
    import os

    return os.environ["SHOAL_COMPUTE_POOL"]


job = where()
print("RESULT " + json.dumps({"pool": job.result(), "listed": job.id in set(list_jobs(limit=5)["name"])}))

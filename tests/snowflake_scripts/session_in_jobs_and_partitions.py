"""A session that SQL, jobs and partitions share: the script's own session, one inside a job
(get_active_session), and with_session writes from DPF workers all see the same tables."""

import json

from snowflake.ml.jobs import remote
from snowflake.ml.modeling.distributors.distributed_partition_function.dpf import DPF
from snowflake.ml.modeling.distributors.distributed_partition_function.entities import RunStatus
from snowflake.snowpark import Session
from snowflake.snowpark.context import get_active_session

session = Session.builder.getOrCreate()
session.sql("CREATE STAGE IF NOT EXISTS payload_stage").collect()
session.sql(
    "CREATE OR REPLACE TABLE SALES AS SELECT 'S' || (seq4() % 3 + 1) AS STORE_ID, seq4() AS UNITS "
    "FROM TABLE(GENERATOR(ROWCOUNT => 30))"
).collect()
session.sql("CREATE OR REPLACE TABLE STORE_TOTALS (STORE_ID VARCHAR, TOTAL BIGINT)").collect()
extra = session.create_dataframe([["S4", 7], ["S4", 8]], schema=["STORE_ID", "UNITS"])
extra.write.save_as_table("SALES", mode="append")


@remote("ML_POOL", stage_name="payload_stage", session=session, target_instances=1)
def summarize_in_job():
    job_session = get_active_session()
    job_session.sql(
        "CREATE OR REPLACE TABLE FROM_JOB AS SELECT STORE_ID, COUNT(*) AS N FROM SALES GROUP BY STORE_ID"
    ).collect()
    return job_session.table("SALES").count()


def total_per_store(data_connector, context):
    df = data_connector.to_pandas()
    total = int(df["UNITS"].sum())
    insert = "INSERT INTO STORE_TOTALS VALUES (?, ?)"
    context.with_session(lambda s: s.sql(insert, params=[context.partition_id, total]).collect())


job = summarize_in_job()
rows_seen_in_job = job.result()
counts = {row["STORE_ID"]: row["N"] for row in session.table("FROM_JOB").collect()}

run = DPF(total_per_store, "@ML_DB.PUBLIC.SESSION_STAGE").run(
    partition_by="STORE_ID", snowpark_dataframe=session.table("SALES"), run_id="totals_by_store"
)
final = run.wait()
totals = {row["STORE_ID"]: row["TOTAL"] for row in session.table("STORE_TOTALS").collect()}
print(
    "RESULT "
    + json.dumps(
        {
            "job_status": job.status,
            "rows_seen_in_job": rows_seen_in_job,
            "counts": counts,
            "dpf": final == RunStatus.SUCCESS,
            "totals": totals,
        }
    )
)

"""Column names as Snowflake reports them: a DataFrame made from pandas with lower-case names has
quoted identifiers ('"feature_a"'), and training code indexes rows by them, quotes included, in
every to_* method, in shards, and in DPF partitions (partition_by names the column as SQL does)."""

import json

import pandas as pd
from snowflake.ml.data.data_connector import DataConnector
from snowflake.ml.data.sharded_data_connector import ShardedDataConnector
from snowflake.ml.modeling.distributors.distributed_partition_function.dpf import DPF
from snowflake.ml.modeling.distributors.distributed_partition_function.entities import RunStatus
from snowflake.snowpark import Session

session = Session.builder.getOrCreate()
local = pd.DataFrame(
    {"feature_a": [float(i) for i in range(8)], "store": ["s1", "s2"] * 4, "LABEL": [0, 1] * 4}
)
df = session.create_dataframe(local)
session.sql("CREATE OR REPLACE TABLE SEEN (PARTITION_ID VARCHAR, COLUMNS VARCHAR, TOTAL DOUBLE)").collect()

dc = DataConnector.from_dataframe(df)
first_row = next(iter(dc.to_torch_dataset(shuffle=False, batch_size=1)))
shards = ShardedDataConnector.from_dataframe(df).shards(2)


def columns_in_partition(data_connector, context):
    frame = data_connector.to_pandas()
    total = float(frame['"feature_a"'].sum())
    insert = "INSERT INTO SEEN VALUES (?, ?, ?)"
    params = [context.partition_id, json.dumps(list(frame.columns)), total]
    context.with_session(lambda s: s.sql(insert, params=params).collect())


run = DPF(columns_in_partition, "@COLUMN_STAGE").run(
    partition_by="store", snowpark_dataframe=df, run_id="column_names"
)
status = run.wait()
seen = {
    row["PARTITION_ID"]: [json.loads(row["COLUMNS"]), row["TOTAL"]] for row in session.table("SEEN").collect()
}
print(
    "RESULT "
    + json.dumps(
        {
            "df_columns": df.columns,
            "to_pandas": list(dc.to_pandas().columns),
            "arrow": dc.to_arrow().column_names,
            "batches": next(iter(dc.to_batches(batch_size=4))).schema.names,
            "torch_keys": sorted(first_row),
            "shard_columns": [list(shard.to_pandas().columns) for shard in shards],
            "shard_rows": [len(shard.to_pandas()) for shard in shards],
            "dpf": status == RunStatus.SUCCESS,
            "seen": seen,
        }
    )
)

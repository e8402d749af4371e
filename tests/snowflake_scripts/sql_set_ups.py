"""SQL that real programs send to set up and split their data: a table built with GENERATOR,
SEQ4, UNIFORM and RANDOM; a sample drawn with a window ordered by RANDOM(); save_as_table in
append mode; and DataFrame.random_split (a SCOPED TEMPORARY table under the hood)."""

import json

from snowflake.snowpark import Session

session = Session.builder.getOrCreate()
session.sql(
    "CREATE OR REPLACE TABLE OBSERVATIONS AS SELECT seq4() AS ID, UNIFORM(1, 100, RANDOM()) AS SCORE, "
    "'G' || (seq4() % 4) AS GRP FROM TABLE(GENERATOR(ROWCOUNT => 400))"
).collect()
sample = session.sql(
    "SELECT ID, GRP FROM (SELECT ID, GRP, ROW_NUMBER() OVER (PARTITION BY GRP ORDER BY RANDOM()) AS RN "
    "FROM OBSERVATIONS) WHERE RN <= 5"
).collect()
session.table("OBSERVATIONS").limit(10).write.mode("append").save_as_table("FIRST_ROWS")
session.table("OBSERVATIONS").limit(10).write.mode("append").save_as_table("FIRST_ROWS")
train, test = session.table("OBSERVATIONS").random_split([0.8, 0.2], seed=7)
train_ids = {row["ID"] for row in train.collect()}
test_ids = {row["ID"] for row in test.collect()}
scores = [row["SCORE"] for row in session.table("OBSERVATIONS").collect()]
print(
    "RESULT "
    + json.dumps(
        {
            "rows": len(scores),
            "scores_in_range": all(1 <= s <= 100 for s in scores),
            "distinct_scores": len(set(scores)),
            "sample_per_group": sorted(
                {g: sum(1 for r in sample if r["GRP"] == g) for g in {r["GRP"] for r in sample}}.items()
            ),
            "appended": session.table("FIRST_ROWS").count(),
            "split_disjoint": not (train_ids & test_ids),
            "split_covers": len(train_ids | test_ids),
            "train_share": round(len(train_ids) / 400, 2),
        }
    )
)

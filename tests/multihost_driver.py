"""What a user's driver on the head host of the multi-host cluster does (tests/test_multihost.py).

    python tests/multihost_driver.py SCENARIO POOL

Each scenario uses the stage S3RUNS (``s3://runs/shoal`` on moto's S3 server) and the compute pool
POOL (the ``ray`` backend, no shared file system), and prints its findings as one JSON line. The
functions the runs ship are defined here, in ``__main__``, so they travel by value, as a
notebook's do. Runs on the head host, with the S3 endpoint and credentials in its environment.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

STAGE = "S3RUNS"


def setup(pool: str, address: str) -> dict[str, Any]:
    """The bucket, the stage on it and the pool, in this host's workspace."""
    import boto3

    import shoal

    boto3.client("s3").create_bucket(Bucket="runs")
    shoal.create_stage(STAGE, url="s3://runs/shoal")
    shoal.create_compute_pool(
        pool, backend="ray", max_nodes=3, node_resource="shoal_pool_MH", address=address
    )
    return {}


def bucket_keys(prefix: str = "shoal/") -> list[str]:
    """The keys under ``prefix`` in the bucket, read from S3 itself."""
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket="runs", Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def put_parquet(frames: dict[str, pd.DataFrame], folder: str) -> None:
    """Each frame as ``<name>.parquet`` in ``folder`` of the stage."""
    import shoal

    local = Path(tempfile.mkdtemp())
    for name, frame in frames.items():
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), local / f"{name}.parquet")
    shoal.get_stage(STAGE).put(str(local / "*.parquet"), folder)


def job(pool: str) -> dict[str, Any]:
    from shoal.jobs import remote

    def instances() -> list[str]:
        from shoal.jobs.context import JobContext

        print("hello from the head of the job")
        return [node.address for node in JobContext.current().nodes()]

    submitted = remote(pool, stage_name=STAGE, target_instances=3)(instances)()
    status = str(submitted.wait(timeout=300))
    return {
        "status": status,
        "nodes": submitted.result(),
        "logs": submitted.get_logs(),
        "keys": bucket_keys(),
        "job": submitted.id,
    }


def where_and_sum(data: Any, context: Any) -> None:
    """A partition: its rows' sum and the host it ran on, as an artifact."""
    import ray

    frame = data.to_pandas()
    seen = {"host": ray.util.get_node_ip_address(), "sum": float(frame["X"].sum()), "rows": len(frame)}
    context.upload_to_stage(seen, "seen.pkl")
    print("partition", context.partition_id, "done")


def dpf(pool: str) -> dict[str, Any]:
    """SQL mode on a table of this host's DuckDB warehouse; stage mode on parquet files on S3."""
    from shoal.data import DataConnector
    from shoal.data.warehouse import connect_warehouse
    from shoal.dpf import DPF

    frame = pd.DataFrame({"STORE": [f"S{i % 6}" for i in range(600)], "X": [float(i) for i in range(600)]})
    with connect_warehouse() as connection:
        connection.execute("CREATE TABLE sales AS SELECT * FROM frame")
    runner = DPF(where_and_sum, STAGE, compute_pool=pool)
    by_key = runner.run(
        partition_by="STORE", dataframe=DataConnector.from_sql("SELECT * FROM sales"), run_id="sql_mode"
    )
    by_key_status = by_key.wait(timeout=300, show_progress=False)
    put_parquet({str(store): part for store, part in frame.groupby("STORE")}, "inputs")
    by_file = runner.run_from_stage(stage_location=f"@{STAGE}/inputs/", run_id="stage_mode")
    by_file_status = by_file.wait(timeout=300, show_progress=False)

    def artifacts(run: Any) -> dict[str, Any]:
        """Each partition's artifact, or its status and error when it has none."""
        found = {}
        for key, details in run.partition_details.items():
            names = details.stage_artifacts_manager.list()
            found[str(key)] = (
                details.stage_artifacts_manager.get("seen.pkl")
                if "seen.pkl" in names
                else {"status": str(details.status), "error": details.error, "files": names}
            )
        return found

    return {
        "sql": str(by_key_status),
        "files": str(by_file_status),
        "sql_seen": artifacts(by_key),
        "file_seen": artifacts(by_file),
        "sql_logs": {str(k): d.logs for k, d in by_key.partition_details.items()},
        "keys": bucket_keys(),
        "expected": {str(k): float(v) for k, v in frame.groupby("STORE")["X"].sum().items()},
    }


def fit_line(data: Any, context: Any) -> list[float]:
    frame = data.to_pandas()
    return [float(v) for v in np.polyfit(frame["X"], frame["Y"], 1)]


def mmt(pool: str) -> dict[str, Any]:
    from shoal.mmt import ManyModelTraining

    x = np.linspace(0, 1, 50)
    frame = pd.concat(
        [
            pd.DataFrame({"REGION": region, "X": x, "Y": slope * x + 1})
            for slope, region in enumerate(["north", "south", "east"], start=1)
        ]
    )
    run = ManyModelTraining(fit_line, STAGE, compute_pool=pool).run(
        partition_by="REGION", dataframe=frame, run_id="per_region"
    )
    status = str(run.wait(timeout=300, show_progress=False))
    return {"status": status, "message": run.message}


def mmt_read_back(pool: str) -> dict[str, Any]:
    from shoal.mmt import ManyModelRun

    run = ManyModelRun.restore_from("per_region", STAGE)
    return {region: [round(v, 3) for v in run.get_model(region)] for region in ("north", "south", "east")}


def xgboost_fit(pool: str) -> dict[str, Any]:
    """Two ranks of 1 CPU on hosts of 1 CPU each, from parquet files on S3; the test RMSE next to
    one process's."""
    import xgboost

    from shoal.data import DataConnector
    from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig

    rng = np.random.default_rng(0)
    x = rng.random((4000, 4))
    names = ["A", "B", "C", "D"]
    frame = pd.DataFrame(x, columns=names).assign(Y=np.sin(6 * x[:, 0]) + x[:, 1] ** 2)
    train, test = frame[:3000], frame[3000:]
    put_parquet({f"part{i}": train[i * 750 : (i + 1) * 750] for i in range(4)}, "train")
    params = {"max_depth": 4, "eta": 0.3}
    estimator = XGBEstimator(
        n_estimators=30,
        params=params,
        scaling_config=XGBScalingConfig(num_workers=2, num_cpu_per_worker=1),
        compute_pool=pool,
        stage_name=STAGE,
    )
    estimator.fit(DataConnector.from_stage(f"@{STAGE}/train", pattern="*.parquet"), names, label_col="Y")
    single = xgboost.train(params, xgboost.DMatrix(train[names], label=train["Y"]), num_boost_round=30)

    def rmse(predicted: Any) -> float:
        return float(np.sqrt(np.mean((np.asarray(predicted) - test["Y"].to_numpy()) ** 2)))

    return {
        "ours": rmse(estimator.predict(test)),
        "single": rmse(single.predict(xgboost.DMatrix(test[names]))),
    }


SCENARIOS = {"job": job, "dpf": dpf, "mmt": mmt, "mmt_read_back": mmt_read_back, "xgboost": xgboost_fit}


if __name__ == "__main__":
    scenario, *args = sys.argv[1:]
    found = setup(*args) if scenario == "setup" else SCENARIOS[scenario](*args)
    print(json.dumps(found))

"""Benchmarks for distributed partition functions, each next to its anchor in the same run.

    .venv/bin/python bench/dpf_partitions.py [--partitions 1000] [--rows 10000000]

1. 1,000 small partitions on a 3-node local pool: DPF wall time (submit to SUCCESS) against raw
   Ray tasks doing the same work on the same cluster (one task per partition) and against Ray
   Data ``groupby().map_groups()``.
2. SQL-mode partitioning of a DuckDB table (10 million rows) into 1,000 partitions: shoal's
   partitioning step against DuckDB's own partitioned ``COPY`` of the same table.

Prints seconds and ratios; runs in its own temporary SHOAL_HOME and stops what it started.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def per_partition(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    context.upload_to_stage(float(frame["value"].mean()), "mean.pkl")


def bench_small_partitions(partitions: int) -> None:
    import numpy as np
    import pandas as pd

    import shoal
    from shoal.dpf import DPF
    from shoal.pools.connect import connect

    frame = pd.DataFrame({"key": np.repeat(np.arange(partitions), 20), "value": np.arange(partitions * 20.0)})
    shoal.create_compute_pool("BENCH", min_nodes=3, max_nodes=3)
    try:
        started = time.monotonic()
        run = DPF(per_partition, "bench", compute_pool="BENCH").run(
            partition_by="key", dataframe=frame, run_id="r"
        )
        status = run.wait(show_progress=False)
        dpf_s = time.monotonic() - started
        assert status == "SUCCESS", status

        ray = connect(shoal.describe_compute_pool("BENCH")["address"])

        @ray.remote(num_cpus=1)
        def task(values: Any) -> float:
            return float(np.mean(values))

        groups = [g["value"].to_numpy() for _, g in frame.groupby("key")]
        started = time.monotonic()
        ray.get([task.remote(g) for g in groups])
        tasks_s = time.monotonic() - started

        import ray.data

        started = time.monotonic()
        ds = ray.data.from_pandas(frame)
        ds.groupby("key").map_groups(
            lambda g: g.groupby("key", as_index=False)["value"].mean(), batch_format="pandas"
        ).materialize()
        data_s = time.monotonic() - started
    finally:
        shoal.drop_compute_pool("BENCH")
    print(f"{partitions} small partitions on a 3-node local pool")
    print(f"  shoal DPF (partition + schedule + write artifacts): {dpf_s:8.2f} s")
    print(f"  raw Ray tasks, one per partition:                  {tasks_s:8.2f} s")
    print(f"  Ray Data groupby().map_groups():                   {data_s:8.2f} s")
    print(f"  ratios: DPF / tasks {dpf_s / tasks_s:.1f}x, DPF / Ray Data {dpf_s / data_s:.2f}x")


def bench_sql_partitioning(rows: int, partitions: int) -> None:
    import duckdb

    from shoal.dpf.partitioning import partition_with_duckdb
    from shoal.stages import create_stage

    stage = create_stage("partbench", exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        db.execute(
            f"CREATE TABLE t AS SELECT range % {partitions} AS key, random() AS a, random() AS b, "
            f"range AS c FROM range({rows})"
        )
        started = time.monotonic()
        parts = partition_with_duckdb(stage, "sqlbench", "key", db.sql("SELECT * FROM t"))
        ours = time.monotonic() - started
        assert len(parts) == partitions
        target = str(Path(tmp) / "copy")
        started = time.monotonic()
        db.execute(f"COPY t TO '{target}' (FORMAT parquet, PARTITION_BY (key), WRITE_PARTITION_COLUMNS true)")
        theirs = time.monotonic() - started
        db.close()
    print(f"SQL-mode partitioning, {rows:,} rows into {partitions} partitions")
    print(f"  shoal partition_with_duckdb (to a stage):          {ours:8.2f} s")
    print(f"  DuckDB COPY ... PARTITION_BY (to a folder):        {theirs:8.2f} s")
    print(f"  ratio shoal / DuckDB: {ours / theirs:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        bench_sql_partitioning(options.rows, options.partitions)
        bench_small_partitions(options.partitions)


if __name__ == "__main__":
    main()

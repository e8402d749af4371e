"""Benchmarks of the DPF engine, each figure next to its anchor measured in the same run, on the
same 3-node local pool.

    .venv/bin/python bench/dpf_partitions.py [--small 1000] [--large 10000] [--rows 10000000]
                                             [--skip-ray-data] [--skip-big]

1. Small partitions: 1,000 partitions of 20 rows; the function computes a mean and uploads it.
   DPF submit to SUCCESS against raw Ray tasks (one per partition, computing the same mean and
   writing the same artifact file into the same folder) and against Ray Data
   ``groupby().map_groups()``. Also: when the first partition started after ``run()`` (warm
   start), and the engine's own time (first partition started to last one ended). Both sides are
   measured warm: after a run that started the pool's executors and the anchor's Ray workers, and
   with the pool idle for a few seconds before each measured run.
2. Linear in partitions: 100, 1,000 and 10,000 partitions, each driven from a fresh process:
   time of 10,000 / time of 1,000, and the driver's peak RSS at 100 and 10,000.
3. Big partitions: 24 partitions of 200,000 rows x 10 columns from a pandas DataFrame; DPF
   against raw Ray tasks that get each group through Ray's object store and do the same work.
4. SQL-mode partitioning of a DuckDB table (10 million rows) into 1,000 partitions against
   DuckDB's own partitioned ``COPY``.

Prints seconds and ratios; runs in its own temporary SHOAL_HOME and stops what it started.
Timings are for reading, not for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

POOL = "BENCH"
STAGE = "bench"
#: A warm pool is an idle one: runs are measured this long after the run before them ended.
IDLE_S = 3.0


def per_partition(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    context.upload_to_stage(float(frame["value"].mean()), "mean.pkl")


def column_means(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    context.upload_to_stage(frame.mean(numeric_only=True).to_dict(), "means.pkl")


def small_frame(partitions: int) -> Any:
    import numpy as np
    import pandas as pd

    return pd.DataFrame({"key": np.repeat(np.arange(partitions), 20), "value": np.arange(partitions * 20.0)})


def timed_run(func: Any, frame: Any, run_id: str) -> dict[str, float]:
    """Run a DPF over ``frame`` by ``key``; seconds to SUCCESS, to the first start, engine time."""
    from shoal.dpf import DPF

    started_wall = time.time()
    started = time.monotonic()
    run = DPF(func, STAGE, compute_pool=POOL).run(partition_by="key", dataframe=frame, run_id=run_id)
    status = run.wait(show_progress=False)
    total = time.monotonic() - started
    assert status == "SUCCESS", (status, run.message)
    details = run.partition_details.values()
    first = min(d.started_at or 0 for d in details)
    last = max(d.ended_at or 0 for d in details)
    return {"total_s": total, "first_start_s": first - started_wall, "engine_s": last - first}


def ray_connection() -> Any:
    import shoal
    from shoal.pools.connect import connect

    return connect(shoal.describe_compute_pool(POOL)["address"])


def anchor_small(frame: Any) -> float:
    """Raw Ray tasks: one per partition, same mean, same artifact file in the same folder."""
    import cloudpickle

    from shoal.stages import get_stage

    ray = ray_connection()
    root = get_stage(STAGE).backend.local_path("anchor_small")
    assert root is not None

    @ray.remote(num_cpus=1)
    def task(key: int, group: Any) -> None:
        folder = os.path.join(root, str(key))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "mean.pkl"), "wb") as handle:
            handle.write(cloudpickle.dumps(float(group["value"].mean())))

    started = time.monotonic()  # splitting the frame counts, as DPF's partitioning does
    ray.get([task.remote(key, group) for key, group in frame.groupby("key")])
    return time.monotonic() - started


def anchor_ray_data(frame: Any) -> float:
    ray_connection()
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    started = time.monotonic()
    ray.data.from_pandas(frame).groupby("key").map_groups(
        lambda g: g.groupby("key", as_index=False)["value"].mean(), batch_format="pandas"
    ).materialize()
    return time.monotonic() - started


def bench_small(partitions: int, skip_ray_data: bool) -> None:
    frame = small_frame(partitions)
    timed_run(per_partition, small_frame(30), "warmup")  # the pool's nodes up, as in the issue
    time.sleep(IDLE_S)
    dpf = timed_run(per_partition, frame, "small")
    anchor_small(small_frame(30))  # the anchor's Ray workers up too: both sides measured warm
    tasks_s = anchor_small(frame)
    data_s = None if skip_ray_data else anchor_ray_data(frame)
    print(f"1. {partitions} partitions of 20 rows on a 3-node local pool (submit to SUCCESS)")
    print(f"   shoal DPF:                                   {dpf['total_s']:8.2f} s")
    print(f"     first partition started after run():       {dpf['first_start_s']:8.2f} s  (warm start)")
    print(f"     engine, first partition start to last end: {dpf['engine_s']:8.2f} s")
    print(f"   raw Ray tasks, one per partition:            {tasks_s:8.2f} s")
    print(
        f"   ratio DPF / raw Ray tasks:                   {dpf['total_s'] / tasks_s:8.2f}x  (target <= 1.5x)"
    )
    print(f"   ratio engine time / raw Ray tasks:           {dpf['engine_s'] / tasks_s:8.2f}x")
    if data_s is not None:
        print(f"   Ray Data groupby().map_groups():             {data_s:8.2f} s")
        faster = data_s / dpf["total_s"]
        print(f"   DPF faster than Ray Data by:                 {faster:8.2f}x  (target >= 4x)")


CHILD = """
import json, os, resource, sys, time
sys.path.insert(0, {bench!r})
import dpf_partitions as b
time.sleep(b.IDLE_S)
out = b.timed_run(b.per_partition, b.small_frame({n}), "scale_{n}")
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(out))
"""


def bench_linear(sizes: list[int]) -> None:
    results = {}
    for n in sizes:
        code = CHILD.format(bench=str(Path(__file__).parent), n=n)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if done.returncode or not line:
            raise RuntimeError(f"the {n}-partition run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        results[n] = json.loads(line[0][7:])
    print("2. Linear in partitions (each size driven from a fresh process)")
    for n, r in results.items():
        print(
            f"   {n:>6} partitions: {r['total_s']:7.2f} s, engine {r['engine_s']:6.2f} s, "
            f"driver peak RSS {r['peak_rss_mb']:6.0f} MB"
        )
    small, large = sizes[1], sizes[-1]
    print(
        f"   time {large} / {small}: {results[large]['total_s'] / results[small]['total_s']:.2f}x "
        f"for {large // small}x the partitions (target <= 12x)"
    )
    growth = results[large]["peak_rss_mb"] - results[sizes[0]]["peak_rss_mb"]
    print(f"   driver peak RSS growth {sizes[0]} -> {large}: {growth:.0f} MB (target < 150 MB)")


def bench_big(partitions: int = 24, rows: int = 200_000, columns: int = 10) -> None:
    import numpy as np
    import pandas as pd

    from shoal.stages import get_stage

    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.random((partitions * rows, columns)), columns=[f"c{i}" for i in range(columns)])
    frame.insert(0, "key", np.repeat(np.arange(partitions), rows))
    time.sleep(IDLE_S)
    dpf = timed_run(column_means, frame, "big")
    root = get_stage(STAGE).backend.local_path("anchor_big")
    assert root is not None
    ray = ray_connection()

    @ray.remote(num_cpus=1)
    def task(key: int, group: Any) -> None:
        import cloudpickle

        folder = os.path.join(root, str(key))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "means.pkl"), "wb") as handle:
            handle.write(cloudpickle.dumps(group.mean(numeric_only=True).to_dict()))

    ray.get([task.remote(key, group) for key, group in frame.head(3 * rows).groupby("key")])  # warm
    started = time.monotonic()
    ray.get([task.remote(key, group) for key, group in frame.groupby("key")])
    tasks_s = time.monotonic() - started
    print(f"3. {partitions} partitions of {rows:,} rows x {columns} columns, from a pandas DataFrame")
    print(f"   shoal DPF (partition + schedule + read + write): {dpf['total_s']:8.2f} s")
    print(f"     first partition started after run():          {dpf['first_start_s']:8.2f} s")
    print(f"     engine, first partition start to last end:    {dpf['engine_s']:8.2f} s")
    print(f"   raw Ray tasks, groups through the object store:  {tasks_s:8.2f} s")
    ratio = dpf["total_s"] / tasks_s
    print(f"   ratio DPF / raw Ray tasks:                       {ratio:8.2f}x  (target <= 1.3x)")


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
    print(f"4. SQL-mode partitioning, {rows:,} rows into {partitions} partitions")
    print(f"   shoal partition_with_duckdb (to a stage):          {ours:8.2f} s")
    print(f"   DuckDB COPY ... PARTITION_BY (to a folder):        {theirs:8.2f} s")
    print(f"   ratio shoal / DuckDB: {ours / theirs:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--skip-ray-data", action="store_true")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-linear", action="store_true")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        import shoal

        shoal.create_compute_pool(POOL, min_nodes=3, max_nodes=3)
        try:
            bench_small(options.small, options.skip_ray_data)
            if not options.skip_linear:
                bench_linear([100, options.small, options.large])
            if not options.skip_big:
                bench_big()
        finally:
            shoal.drop_compute_pool(POOL)
        bench_sql_partitioning(options.rows, options.small)


if __name__ == "__main__":
    main()

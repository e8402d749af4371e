"""shoal quickstart: the main demo, run on the embedded defaults.

    bash .ci/dev demo

What it shows today (it grows with every part of shoal):

1. the plugin system: which plugins are installed and what they contribute;
2. a stage round trip: create a stage in $SHOAL_HOME, upload a folder, list it with a glob,
   write a file atomically, download everything back and check it byte for byte;
3. a multi-node job: a local compute pool of 3 Ray nodes on this machine, a function run as a
   3-instance job whose Ray tasks land on every node, its result and per-instance logs;
4. a distributed partition function: a sample sales table in the embedded DuckDB warehouse,
   one model per store trained on the pool's nodes, the models' metrics queried back with one
   DuckDB query;
5. one XGBoost model trained across the pool's three nodes;
6. many-model training and inference: one XGBoost model per region, trained with the
   ready-made per-partition call (no training function) and saved in XGBoost's own format,
   then new data scored per region with those models; then the pool is stopped and nothing is
   left running.

Runs on the driver (this process); nothing else needs to be set up.
"""

from __future__ import annotations

import filecmp
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import shoal
from shoal.cli.plugins_cmd import plugin_table
from shoal.workspace import shoal_home

console = Console()


def show_plugins() -> None:
    table = Table(title="1. Installed plugins (shoal plugins list)")
    for column in ("plugin", "distribution", "hooks", "contributes"):
        table.add_column(column)
    for row in plugin_table():
        contributes = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["contributes"].items())
        table.add_row(
            row["name"], f"{row['distribution']} {row['version']}", ", ".join(row["hooks"]), contributes
        )
    console.print(table)


def make_sample_data(folder: Path) -> None:
    (folder / "region=north").mkdir(parents=True)
    (folder / "region=south").mkdir(parents=True)
    (folder / "region=north" / "sales.csv").write_text("store,units\n1,10\n2,12\n")
    (folder / "region=south" / "sales.csv").write_text("store,units\n3,7\n")
    (folder / "README.txt").write_text("sample sales data\n")


def stage_round_trip() -> None:
    console.rule("2. Stage round trip")
    stage = shoal.create_stage("quickstart", exist_ok=True)
    stage.remove("demo", missing_ok=True)  # the demo can be run again and again
    console.print(f"stage [bold]@{stage.name}[/] lives at {stage.url}")

    with tempfile.TemporaryDirectory() as tmp:
        source, back = Path(tmp) / "source", Path(tmp) / "back"
        make_sample_data(source)
        uploaded = stage.put(str(source), "demo/input")
        console.print(f"uploaded {len(uploaded)} files: {uploaded}")
        console.print(f"list(pattern='*.csv') -> {stage.list('demo', pattern='*.csv')}")

        with shoal.get_stage("@db.schema.QUICKSTART").open("demo/input/summary.txt", "w") as handle:
            handle.write("2 regions, 3 stores\n")  # appears under its name only when the block ends
        try:
            with stage.open("demo/input/summary.txt", "w") as handle:
                handle.write("half a file")
                raise RuntimeError("simulated crash during a write")
        except RuntimeError:
            pass
        console.print(
            f"after a crashed overwrite the file still reads: {stage.read_text('demo/input/summary.txt')!r}"
        )

        downloaded = stage.get("demo/input", str(back))
        same = all(
            filecmp.cmp(source / rel, back / rel, shallow=False)
            for rel in ("README.txt", "region=north/sales.csv", "region=south/sales.csv")
        )
        console.print(f"downloaded {len(downloaded)} files; identical to the originals: [bold]{same}[/]")
        if not same:
            raise SystemExit("round trip changed the data")

    try:
        stage.open("../outside.txt", "w")
    except shoal.StagePathError as exc:
        console.print(f"refused, as it should be: {exc}")


def where_do_tasks_run(tasks: int) -> dict[str, object]:
    """The job's payload: runs on instance 0 and spreads Ray tasks over the job's nodes."""
    import os
    import socket

    import ray

    ray.init(address="auto")

    @ray.remote(num_cpus=0.1)
    def square(x: int) -> tuple[str, int]:
        from shoal.jobs import instance_id

        print(f"instance {instance_id()} squares {x}")
        return str(ray.get_runtime_context().get_node_id())[:8], x * x

    results = ray.get([square.options(scheduling_strategy="SPREAD").remote(i) for i in range(tasks)])
    print(f"payload on {socket.gethostname()}: {len(results)} tasks done")
    return {
        "instances": int(os.environ["SHOAL_INSTANCE_COUNT"]),
        "nodes_used": sorted({node for node, _ in results}),
        "sum_of_squares": sum(value for _, value in results),
    }


def multi_node_job() -> None:
    console.rule("3. A multi-node job on a local compute pool")
    from shoal.jobs import remote

    started = time.monotonic()
    shoal.create_compute_pool("QUICKSTART", min_nodes=3, max_nodes=3, exist_ok=True)
    pool = shoal.describe_compute_pool("QUICKSTART")
    console.print(
        f"pool QUICKSTART: {pool['active_nodes']} Ray nodes at {pool['address']} "
        f"(up in {time.monotonic() - started:.1f} s)"
    )
    try:
        job = remote("QUICKSTART", stage_name="quickstart", target_instances=3)(where_do_tasks_run)(12)
        console.print(f"submitted {job.id}; waiting...")
        result = job.result(timeout=300)
        console.print(f"status {job.status.value}; result: {result}")
        console.print(f"instance 0 log (the payload):\n{job.get_logs()}")
        console.print(f"instance 1 log (Ray workers on node 1):\n{job.get_logs(instance_id=1)}")
        console.print(f"code, result and logs are kept at {job.stage_path}")
    except BaseException:
        shoal.stop_compute_pool("QUICKSTART")
        raise


def fit_store(data: object, context: object) -> None:
    """The per-partition function: fit a least-squares line units ~ price for one store."""
    import numpy as np
    import pandas as pd

    frame = data.to_pandas()  # type: ignore[attr-defined]
    slope, intercept = np.polyfit(frame["PRICE"], frame["UNITS"], 1)
    print(f"store {context.partition_id}: {len(frame)} rows, slope {slope:.2f}")  # type: ignore[attr-defined]
    metrics = pd.DataFrame({"rows": [len(frame)], "slope": [slope], "intercept": [intercept]})
    context.upload_to_stage(  # type: ignore[attr-defined]
        metrics, "metrics.parquet", write_function=lambda df, path: df.to_parquet(path)
    )


def partition_function() -> None:
    console.rule("4. One model per store with a distributed partition function")
    from shoal.data import DataConnector
    from shoal.data.warehouse import connect_warehouse
    from shoal.dpf import DPF

    try:
        with connect_warehouse() as warehouse:
            warehouse.execute(
                "CREATE OR REPLACE TABLE sales AS"
                " SELECT 'S' || lpad(CAST(i % 8 AS VARCHAR), 2, '0') AS STORE,"
                " CAST(1 + (i % 17) * 0.25 AS DOUBLE) AS PRICE,"
                " CAST(100 - (3 + i % 8) * (1 + (i % 17) * 0.25) + (i % 5) AS DOUBLE) AS UNITS"
                " FROM range(4000) t(i)"
            )
        sales = DataConnector.from_sql("SELECT * FROM sales")
        run = DPF(fit_store, "quickstart", compute_pool="QUICKSTART").run(
            partition_by="STORE", dataframe=sales, run_id="stores", on_existing_artifacts="overwrite"
        )
        status = run.wait(show_progress=False)
        done = run.get_progress().get("DONE", [])
        nodes = len({d.node_id for d in done})
        console.print(f"run {run.run_id}: {status.value}, {len(done)} partitions on {nodes} nodes")
        if status != "SUCCESS":
            raise SystemExit(f"the DPF run did not succeed: {run.get_progress()}")
        console.print(run.partition_details["S03"].logs.strip())
        table = run.query_artifacts("metrics.parquet").order("partition_id").df()
        console.print(table.to_string(index=False))
        distributed_xgboost()
        many_models()
    finally:
        shoal.stop_compute_pool("QUICKSTART")
        console.print("pool QUICKSTART stopped (shoal pool start QUICKSTART brings it back)")


def distributed_xgboost() -> None:
    console.rule("5. One XGBoost model trained across the pool's nodes")
    import numpy as np
    import xgboost

    from shoal.data import DataConnector
    from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig

    sales = DataConnector.from_sql("SELECT * FROM sales").to_pandas()
    features = ["PRICE"]
    started = time.monotonic()
    estimator = XGBEstimator(
        n_estimators=30,
        params={"max_depth": 4, "eta": 0.3},
        scaling_config=XGBScalingConfig(num_workers=3),
        compute_pool="QUICKSTART",
    )
    booster = estimator.fit(sales, input_cols=features, label_col="UNITS", eval_set=sales)
    seconds = time.monotonic() - started
    single = xgboost.train(
        {"objective": "reg:squarederror", "tree_method": "hist", "max_depth": 4, "eta": 0.3},
        xgboost.DMatrix(sales[features], label=sales["UNITS"]),
        num_boost_round=30,
    )
    truth = sales["UNITS"].to_numpy()
    ours = float(np.sqrt(np.mean((estimator.predict(sales) - truth) ** 2)))
    theirs = float(np.sqrt(np.mean((single.predict(xgboost.DMatrix(sales[features])) - truth) ** 2)))
    console.print(
        f"{type(booster).__module__}.{type(booster).__name__} with {booster.num_boosted_rounds()} rounds "
        f"from 3 workers in {seconds:.1f} s; RMSE {ours:.3f} (one process: {theirs:.3f}); "
        f"last eval RMSE {estimator.get_eval_results()['eval']['rmse'][-1]:.3f}"
    )


def score_region(data: object, model: object, context: object) -> None:
    """The per-partition inference function: predict units for one region's new prices."""
    import xgboost

    frame = data.to_pandas()  # type: ignore[attr-defined]
    frame["PREDICTED"] = model.predict(xgboost.DMatrix(frame[["PRICE"]].to_numpy()))  # type: ignore[attr-defined]
    context.upload_to_stage(  # type: ignore[attr-defined]
        frame, "predictions.parquet", write_function=lambda df, path: df.to_parquet(path)
    )


def many_models() -> None:
    console.rule("6. One model per region, then scoring per region (many-model training)")
    from shoal.data import DataConnector
    from shoal.data.warehouse import connect_warehouse
    from shoal.mmt import ManyModelInference, ManyModelTraining

    with connect_warehouse() as warehouse:
        warehouse.execute(
            "CREATE OR REPLACE TABLE regional_sales AS SELECT"
            " CASE STORE WHEN 'S00' THEN 'north' WHEN 'S01' THEN 'north' WHEN 'S02' THEN 'south'"
            " WHEN 'S03' THEN 'south' WHEN 'S04' THEN 'east' WHEN 'S05' THEN 'east' ELSE 'west' END"
            " AS REGION, PRICE, UNITS FROM sales"
        )
    sales = DataConnector.from_sql("SELECT * FROM regional_sales")
    trainer = ManyModelTraining.from_estimator(
        "xgboost",
        "quickstart",
        label_col="UNITS",
        input_cols=["PRICE"],
        compute_pool="QUICKSTART",
        n_estimators=20,
        params={"max_depth": 3},
    )
    trained = trainer.run(
        partition_by="REGION", dataframe=sales, run_id="regions", on_existing_artifacts="overwrite"
    )
    if trained.wait(show_progress=False) != "SUCCESS":
        raise SystemExit(f"many-model training did not succeed: {trained.get_progress()}")
    console.print(trained.models().to_string(index=False))
    new_prices = DataConnector.from_sql(
        "SELECT REGION, PRICE FROM (SELECT DISTINCT REGION FROM regional_sales),"
        " (SELECT CAST(p AS DOUBLE) AS PRICE FROM range(1, 5) t(p)) ORDER BY REGION, PRICE"
    )
    scores = ManyModelInference(
        score_region, "quickstart", training_run_id="regions", compute_pool="QUICKSTART"
    ).run(
        partition_by="REGION", dataframe=new_prices, run_id="region_scores", on_existing_artifacts="overwrite"
    )
    if scores.wait(show_progress=False) != "SUCCESS":
        raise SystemExit(f"many-model inference did not succeed: {scores.get_progress()}")
    table = scores.query_artifacts("predictions.parquet").order("partition_id, PRICE").df()
    console.print(table[["partition_id", "PRICE", "PREDICTED"]].round(2).to_string(index=False))


def main() -> None:
    console.print(f"[bold]shoal {shoal.__version__}[/] quickstart; workspace: {shoal_home()}")
    show_plugins()
    stage_round_trip()
    multi_node_job()
    partition_function()
    console.print("[green]quickstart finished[/]")


if __name__ == "__main__":
    main()

"""Distributed partition functions on a real 3-node local pool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shoal
from pool_helpers import pool_in_new_home, run_python
from shoal.dpf import DPF, DPFRun, ExecutionOptions, PartitionStatus, RunStatus

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "DPF3"
STAGE = "runs"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("dpf-home"), POOL, 3)


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", POOL)


def sales(stores: int = 6, rows_per_store: int = 5) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "STORE": np.repeat([f"S{i:02d}" for i in range(stores)], rows_per_store),
            "UNITS": rng.integers(1, 100, stores * rows_per_store),
            "PRICE": rng.random(stores * rows_per_store).round(3),
        }
    )


def summarize(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    print(f"partition {context.partition_id}: {len(frame)} rows")
    context.upload_to_stage({"rows": len(frame), "units": int(frame["UNITS"].sum())}, "summary.pkl")


def test_sql_mode_from_pandas_spreads_over_the_nodes_and_keeps_artifacts() -> None:
    frame = sales()
    run = DPF(summarize, STAGE).run(partition_by="STORE", dataframe=frame, run_id="pandas_run")
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    assert run.status == "SUCCESS"
    details = run.partition_details
    assert sorted(details) == [f"S{i:02d}" for i in range(6)]
    for store, detail in details.items():
        expected = frame[frame["STORE"] == store]
        assert detail.status == PartitionStatus.DONE
        assert detail.attempts == 1
        assert detail.stage_artifacts_manager.get("summary.pkl") == {
            "rows": 5,
            "units": int(expected["UNITS"].sum()),
        }
        assert f"partition {store}: 5 rows" in detail.logs
        assert sorted(detail.stage_artifacts_manager.list()) == ["summary.pkl", "train.log"]
    assert len({d.node_id for d in details.values()}) == 3, "partitions spread over the job's three nodes"
    assert set(run.get_progress()) == {"DONE"}


def test_sql_mode_from_duckdb_and_integer_keys(tmp_path: Path) -> None:
    import duckdb

    connection = duckdb.connect()
    relation = connection.sql("SELECT range % 4 AS bucket, range AS value FROM range(40)")
    run = DPF(summarize_values, STAGE).run(partition_by="bucket", dataframe=relation, run_id="duck_run")
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    details = run.partition_details
    assert sorted(details) == ["0", "1", "2", "3"]
    assert details["3"].stage_artifacts_manager.get("total.pkl") == sum(v for v in range(40) if v % 4 == 3)


def summarize_values(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    assert frame["bucket"].nunique() == 1
    context.upload_to_stage(int(frame["value"].sum()), "total.pkl")


def test_sql_mode_from_a_snowpark_local_testing_session() -> None:
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    df = session.create_dataframe(sales(stores=3).values.tolist(), schema=["STORE", "UNITS", "PRICE"])
    run = DPF(summarize, STAGE).run(partition_by="STORE", snowpark_dataframe=df, run_id="snowpark_run")
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    assert sorted(run.partition_details) == ["S00", "S01", "S02"]


def count_rows(data: Any, context: Any) -> None:
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")


def test_stage_mode_over_nested_folders(tmp_path: Path) -> None:
    stage = shoal.create_stage("features", exist_ok=True)
    for region, stores in (("north", ["P1", "P2"]), ("south", ["P3"])):
        for store in stores:
            local = tmp_path / f"{store}.parquet"
            sales(stores=1, rows_per_store=3 + int(store[1])).to_parquet(local)
            stage.put(str(local), f"train/{region}/{store}")
    stage.write_text("train/README.txt", "not a partition")
    run = DPF(count_rows, STAGE).run_from_stage(stage_location="@FEATURES/train/", run_id="stage_run")
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    details = run.partition_details
    assert sorted(details) == [
        "train/north/P1/P1.parquet",
        "train/north/P2/P2.parquet",
        "train/south/P3/P3.parquet",
    ]
    assert details["train/north/P2/P2.parquet"].stage_artifacts_manager.get("rows.pkl") == 5
    assert shoal.get_stage(STAGE).exists("stage_run/train/south/P3/P3.parquet/rows.pkl"), "ids with '/' nest"


def tiny(data: Any, context: Any) -> None:
    context.upload_to_stage(int(data.to_pandas()["value"].iloc[0]), "value.pkl")


def test_two_hundred_partitions() -> None:
    frame = pd.DataFrame({"key": np.arange(240), "value": np.arange(240) * 3})
    run = DPF(tiny, STAGE).run(partition_by="key", dataframe=frame, run_id="many_run")
    assert run.wait(timeout=600, show_progress=False) == RunStatus.SUCCESS
    details = run.partition_details
    assert len(details) == 240
    assert all(d.status == "DONE" for d in details.values())
    assert details["239"].stage_artifacts_manager.get("value.pkl") == 717


def flaky(data: Any, context: Any) -> None:
    """Fails on the first attempt of partition S01, always on S02."""
    store = context.partition_id
    marker = f"@{STAGE}/flaky_markers"
    if store == "S02":
        raise ValueError(f"bad data in {store}")
    if store == "S01":
        try:
            context.download_from_stage("seen.pkl")
        except Exception:
            context.upload_to_stage(True, "seen.pkl")
            raise RuntimeError("transient failure") from None
    context.upload_to_stage("ok", "done.pkl")
    del marker


def test_failures_are_retried_and_reported() -> None:
    options = ExecutionOptions(max_retries=2, retry_backoff_s=0.2)
    run = DPF(flaky, STAGE).run(
        partition_by="STORE", dataframe=sales(stores=4), run_id="flaky_run", execution_options=options
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.PARTIAL_FAILURE
    details = run.partition_details
    assert details["S00"].status == "DONE"
    assert details["S01"].status == "DONE"
    assert details["S01"].attempts == 2
    assert details["S02"].status == "FAILED"
    assert details["S02"].attempts == 3
    assert details["S02"].error == "ValueError: bad data in S02"
    assert "ValueError: bad data in S02" in details["S02"].logs
    assert details["S02"].logs.count("attempt") == 3
    assert sorted(d.partition_id for d in run.get_progress()["FAILED"]) == ["S02"]


def fails_until_fixed(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    if context.partition_id in ("S01", "S03") and not Path(frame["FIX"].iloc[0]).exists():
        raise ValueError(f"store {context.partition_id} is not fixed yet")
    context.upload_to_stage(len(frame), "rows.pkl")


def test_retry_failed_reruns_only_the_failed_partitions_as_a_linked_run(tmp_path: Path) -> None:
    from shoal.errors import ConfigError, RunConflictError

    fix = tmp_path / "fixed"
    options = ExecutionOptions(max_retries=0)
    run = DPF(fails_until_fixed, STAGE).run(
        partition_by="STORE", dataframe=sales(stores=4).assign(FIX=str(fix)), run_id="to_retry",
        execution_options=options,
    )  # fmt: skip
    with pytest.raises(RunConflictError, match="still in progress"):
        run.retry_failed()
    assert run.wait(timeout=240, show_progress=False) == RunStatus.PARTIAL_FAILURE
    before = {pid: (d.status, d.ended_at) for pid, d in run.partition_details.items()}
    fix.touch()
    retry = run.retry_failed()
    assert retry.run_id == "to_retry_retry1"
    assert retry.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    assert sorted(retry.partition_details) == ["S01", "S03"]
    assert retry.partition_details["S03"].stage_artifacts_manager.get("rows.pkl") == 5
    assert retry.definition["retry_of"] == "to_retry"
    assert DPFRun.restore_from("to_retry", STAGE).retries == ["to_retry_retry1"]
    assert {pid: (d.status, d.ended_at) for pid, d in run.partition_details.items()} == before
    with pytest.raises(ConfigError, match="no FAILED or INTERNAL_ERROR partition"):
        retry.retry_failed()


def test_fail_fast_stops_at_the_first_failure() -> None:
    options = ExecutionOptions(fail_fast=True, use_head_node=False, num_cpus_per_worker=1)
    run = DPF(fail_then_sleep, STAGE).run(
        partition_by="key",
        dataframe=pd.DataFrame({"key": range(30)}),
        run_id="fast_run",
        execution_options=options,
    )
    status = run.wait(timeout=240, show_progress=False)
    assert status in (RunStatus.FAILURE, RunStatus.PARTIAL_FAILURE)
    statuses = [d.status for d in run.partition_details.values()]
    assert statuses.count(PartitionStatus.FAILED) == 1
    assert statuses.count(PartitionStatus.CANCELLED) >= 20


def fail_then_sleep(data: Any, context: Any) -> None:
    if context.partition_id == "0":
        raise RuntimeError("first partition fails")
    time.sleep(1.0)


def slow(data: Any, context: Any) -> None:
    time.sleep(1.5)


def test_cancel_a_run() -> None:
    run = DPF(slow, STAGE).run(
        partition_by="key", dataframe=pd.DataFrame({"key": range(40)}), run_id="cancel_run"
    )
    deadline = time.monotonic() + 120
    while not run.get_progress().get("DONE"):
        assert time.monotonic() < deadline
        time.sleep(0.3)
    run.cancel()
    assert run.wait(timeout=120, show_progress=False) == RunStatus.CANCELLED
    progress = run.get_progress()
    assert progress.get("DONE")
    assert len(progress.get("CANCELLED", [])) >= 20
    assert all(d.stage_artifacts_manager.list() for d in progress["DONE"]), (
        "finished partitions keep their logs"
    )


def test_bad_input_is_refused_before_anything_is_reserved() -> None:
    dpf = DPF(summarize, STAGE)
    stage = shoal.get_stage(STAGE)
    with pytest.raises(ValueError, match="the input has no rows"):
        dpf.run(partition_by="STORE", dataframe=sales().iloc[:0], run_id="empty_run")
    with pytest.raises(
        ValueError, match=r"partition_by column 'SHOP' is not in the input; its columns are: STORE, UNITS"
    ):
        dpf.run(partition_by="SHOP", dataframe=sales(), run_id="unknown_run")
    assert not stage.list("empty_run")
    assert not stage.list("unknown_run")


def bad_filename(data: Any, context: Any) -> None:
    context.upload_to_stage(1, "models/model.pkl")


def test_non_flat_artifact_filename_is_a_clear_error() -> None:
    run = DPF(bad_filename, STAGE).run(
        partition_by="STORE",
        dataframe=sales(stores=1),
        run_id="flat_run",
        execution_options=ExecutionOptions(max_retries=0),
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.FAILURE
    error = run.partition_details["S00"].error
    assert "'models/model.pkl' contains a path; use a flat name" in error


def test_existing_artifacts_and_concurrent_runs() -> None:
    first = DPF(slow, STAGE).run(
        partition_by="key", dataframe=pd.DataFrame({"key": range(6)}), run_id="dup_run"
    )
    with pytest.raises(RuntimeError, match="two runs cannot share a run_id"):
        DPF(slow, STAGE).run(
            partition_by="key",
            dataframe=pd.DataFrame({"key": range(6)}),
            run_id="dup_run",
            on_existing_artifacts="overwrite",
        )
    first.wait(timeout=240, show_progress=False)
    with pytest.raises(ValueError, match="already holds artifacts"):
        DPF(slow, STAGE).run(partition_by="key", dataframe=pd.DataFrame({"key": range(6)}), run_id="dup_run")
    again = DPF(count_rows, STAGE).run(
        partition_by="key",
        dataframe=pd.DataFrame({"key": range(2)}),
        run_id="dup_run",
        on_existing_artifacts="overwrite",
    )
    assert again.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    assert sorted(again.partition_details) == ["0", "1"]


def test_restore_from_a_fresh_process(home: Path) -> None:
    run = DPF(summarize, STAGE).run(partition_by="STORE", dataframe=sales(stores=2), run_id="restore_run")
    run.wait(timeout=240, show_progress=False)
    out = run_python(
        "import json\nfrom shoal.dpf import DPFRun\n"
        f"run = DPFRun.restore_from('restore_run', {STAGE!r})\n"
        "print(json.dumps({'status': run.status, 'ids': sorted(run.partition_details),"
        " 'summary': run.partition_details['S01'].stage_artifacts_manager.get('summary.pkl')}))\n",
        home,
    )
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["status"] == "SUCCESS"
    assert seen["ids"] == ["S00", "S01"]
    assert seen["summary"]["rows"] == 5


def append_rows(data: Any, context: Any) -> None:
    frame = data.to_pandas()

    def write(session: Any) -> None:
        session.execute(
            "INSERT INTO store_totals VALUES (?, ?)", [context.partition_id, int(frame["UNITS"].sum())]
        )

    context.with_session(write)


def test_with_session_appends_to_a_warehouse_table() -> None:
    from shoal.data.warehouse import connect_warehouse

    with connect_warehouse() as connection:
        connection.execute("CREATE OR REPLACE TABLE store_totals (store VARCHAR, units BIGINT)")
    frame = sales(stores=3)
    run = DPF(append_rows, STAGE).run(partition_by="STORE", dataframe=frame, run_id="session_run")
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    with connect_warehouse(read_only=True) as connection:
        rows = sorted(connection.execute("SELECT store, units FROM store_totals").fetchall())
    assert rows == [(s, int(frame[frame["STORE"] == s]["UNITS"].sum())) for s in ("S00", "S01", "S02")]


def test_restored_run_of_a_killed_driver_resumes_and_skips_done_partitions(home: Path) -> None:
    run = DPF(slow, STAGE).run(
        partition_by="key", dataframe=pd.DataFrame({"key": range(12)}), run_id="resume_run"
    )
    deadline = time.monotonic() + 120
    while len(run.get_progress().get("DONE", [])) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    from shoal.jobs import get_job

    job = get_job(DPFRun.restore_from("resume_run", STAGE).job_id)
    job.cancel()  # the driver (the run's job) dies mid-run
    job.wait(timeout=60)
    done_before = {d.partition_id: d.ended_at for d in run.get_progress().get("DONE", [])}
    restored = DPFRun.restore_from("resume_run", STAGE)
    assert not restored.is_driver_alive()
    resumed = restored.resume()
    assert resumed.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    after = resumed.partition_details
    for pid, ended in done_before.items():
        assert after[pid].ended_at == ended, f"partition {pid} was DONE and must not run again"
    assert all(d.status == "DONE" for d in after.values())


def forecast(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    out = pd.DataFrame({"day": [1, 2], "units": [float(frame["UNITS"].mean())] * 2})
    context.upload_to_stage(out, "forecast.parquet", write_function=lambda df, path: df.to_parquet(path))


def test_parquet_artifacts_are_one_query_away() -> None:
    frame = sales(stores=3)
    run = DPF(forecast, STAGE).run(partition_by="STORE", dataframe=frame, run_id="query_run")
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    relation = run.query_artifacts("forecast.parquet")
    rows = relation.aggregate("partition_id, count(*) AS n, max(units) AS units", "partition_id").order(
        "partition_id"
    )
    expected = [(s, 2, float(frame[frame["STORE"] == s]["UNITS"].mean())) for s in ("S00", "S01", "S02")]
    assert rows.fetchall() == expected


def append_snowpark(data: Any, context: Any) -> None:
    total = int(data.to_pandas()["UNITS"].sum())
    pid = context.partition_id

    def write(session: Any) -> None:
        session.create_dataframe([[pid, total]], schema=["STORE", "UNITS"]).write.save_as_table(
            "STORE_TOTALS", mode="append"
        )

    context.with_session(write)


def test_with_session_writes_reach_a_local_testing_session_after_wait() -> None:
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    rows = sales(stores=2)
    df = session.create_dataframe(rows.values.tolist(), schema=["STORE", "UNITS", "PRICE"])
    run = DPF(append_snowpark, STAGE).run(
        partition_by="STORE", snowpark_dataframe=df, run_id="snow_session_run"
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    got = sorted((r["STORE"], r["UNITS"]) for r in session.table("STORE_TOTALS").collect())
    assert got == [(s, int(rows[rows["STORE"] == s]["UNITS"].sum())) for s in ("S00", "S01")]


def bucket_rows(data: Any, context: Any) -> None:
    frame = data.to_pandas()
    context.upload_to_stage(sorted(frame["key"].tolist()), "keys.pkl")


def test_custom_partitioners_from_the_hook_and_the_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.dpf import partitioner

    frame = pd.DataFrame({"key": range(50), "value": range(50)})
    run = DPF(bucket_rows, STAGE).run(
        partition_by=partitioner("hash_buckets", column="key", buckets=4), dataframe=frame, run_id="hash_run"
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    seen = [
        run.partition_details[p].stage_artifacts_manager.get("keys.pkl")
        for p in sorted(run.partition_details)
    ]
    assert sorted(run.partition_details) == ["0", "1", "2", "3"]
    assert sorted(k for keys in seen for k in keys) == list(range(50)), "every row in exactly one bucket"
    chunks = DPF(bucket_rows, STAGE).run(
        partition_by=partitioner("fixed_size_chunks", rows=20), dataframe=frame, run_id="chunk_run"
    )
    assert chunks.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    sizes = {p: len(d.stage_artifacts_manager.get("keys.pkl")) for p, d in chunks.partition_details.items()}
    assert sizes == {"0": 20, "1": 20, "2": 10}

    from conftest import REPO_ROOT

    monkeypatch.syspath_prepend(str(REPO_ROOT / "examples"))
    from custom_partitioner import MonthPartitioner, monthly_total

    days = pd.date_range("2026-01-01", "2026-03-31", freq="D")
    sales = pd.DataFrame({"DAY": days, "UNITS": range(len(days))})
    monthly = DPF(monthly_total, STAGE).run(
        partition_by=MonthPartitioner("DAY"), dataframe=sales, run_id="month_run"
    )
    assert monthly.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    totals = {m: d.stage_artifacts_manager.get("total.pkl") for m, d in monthly.partition_details.items()}
    assert totals == {
        "2026-01": {"days": 31, "units": sum(range(31))},
        "2026-02": {"days": 28, "units": sum(range(31, 59))},
        "2026-03": {"days": 31, "units": sum(range(59, 90))},
    }
    with pytest.raises(ValueError, match="reads column\\(s\\) DATE that the input lacks"):
        DPF(monthly_total, STAGE).run(
            partition_by=MonthPartitioner("DATE"), dataframe=sales, run_id="bad_month"
        )


def test_dpf_cli_runs_over_a_warehouse_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from shoal.cli import cli
    from shoal.data.warehouse import connect_warehouse

    with connect_warehouse() as connection:
        connection.execute(
            "CREATE OR REPLACE TABLE cli_sales AS SELECT range % 3 AS shop, range AS units FROM range(30)"
        )
    (tmp_path / "cli_funcs.py").write_text(
        "def shout(data, context):\n    print('rows', len(data.to_pandas()))\n"
        "def fail_on_one(data, context):\n"
        "    if context.partition_id == '1':\n        raise ValueError('shop 1 is closed')\n"
    )
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "dpf",
            "run",
            "cli_funcs:shout",
            "--partition-by",
            "shop",
            "--table",
            "cli_sales",
            "--stage-name",
            STAGE,
            "--run-id",
            "cli_run",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "run cli_run: SUCCESS" in result.stderr, "progress goes to stderr"
    zeros = {"PENDING": 0, "RUNNING": 0, "DONE": 0, "FAILED": 0, "CANCELLED": 0, "INTERNAL_ERROR": 0}
    summary = {
        "run_id": "cli_run",
        "stage": STAGE.upper(),
        "status": "SUCCESS",
        "partitions": {**zeros, "DONE": 3},
    }
    status = runner.invoke(cli, ["dpf", "status", "cli_run", "--stage-name", STAGE, "--format", "json"])
    assert json.loads(status.stdout) == summary, "every status is listed, with zeros"
    assert "rows 10" in runner.invoke(cli, ["dpf", "logs", "cli_run", "2", "--stage-name", STAGE]).output
    listed = runner.invoke(cli, ["dpf", "ls", "--stage-name", STAGE, "--json"]).stdout
    assert summary in json.loads(listed)
    table = runner.invoke(cli, ["dpf", "ls", "--stage-name", STAGE]).stdout.splitlines()
    assert table[0].split()[:3] == ["run_id", "status", "pending"]
    assert ["cli_run", "SUCCESS", "0", "0", "3", "0", "0", "0"] in [line.split() for line in table]

    # A run that does not end SUCCESS exits 1 with one line naming the failed partition and its log;
    # the data (the run's summary) still goes to stdout.
    sql = ["--sql", "SELECT * FROM cli_sales", "--partition-by", "shop", "--stage-name", STAGE]
    shoal = Path(sys.executable).parent / "shoal"
    env = {k: v for k, v in os.environ.items() if k != "SHOAL_DEBUG"}
    failed = subprocess.run(
        [
            str(shoal),
            "dpf",
            "run",
            "cli_funcs:fail_on_one",
            *sql,
            "--run-id",
            "cli_partial",
            "--max-retries",
            "0",
            "--json",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert failed.returncode == 1, failed.stderr
    assert json.loads(failed.stdout)[0]["partitions"]["FAILED"] == 1
    error = [line for line in failed.stderr.splitlines() if line.startswith("Error: ")]
    assert error == [
        "Error: run cli_partial ended PARTIAL_FAILURE: 1 partition(s) failed (1); a partition's log: "
        f"shoal dpf logs cli_partial 1 --stage-name {STAGE.upper()}"
    ], failed.stderr
    # The same run id again: the CLI names its own flag, not the API's argument.
    again = subprocess.run(
        [str(shoal), "dpf", "run", "cli_funcs:shout", *sql, "--run-id", "cli_partial"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert again.returncode == 2, again.stderr
    assert again.stderr.strip() == (
        f"Error: @{STAGE.upper()}/cli_partial/ already holds the artifacts of an earlier run; "
        "pass --overwrite to replace them, or choose another --run-id"
    )


def run_inside_a_job(rows: int) -> dict[str, Any]:
    import pandas as pd

    from shoal.dpf import DPF

    frame = pd.DataFrame({"key": [i % 3 for i in range(rows)], "value": range(rows)})
    run = DPF(count_rows, "runs").run(
        partition_by="key", dataframe=frame, run_id="inside_job_run", on_existing_artifacts="overwrite"
    )
    status = run.wait(show_progress=False)
    return {
        "status": status.value,
        "nodes": sorted({d.node_id for d in run.partition_details.values()}),
        "job": run.job_id,
    }


def test_a_run_called_from_a_job_payload_uses_that_jobs_nodes() -> None:
    import os

    from shoal.jobs import remote

    job = remote(POOL, stage_name=STAGE, target_instances=2, instances_timeout=120)(run_inside_a_job)(30)
    report = job.result(timeout=300)
    assert report["status"] == "SUCCESS"
    assert report["job"] == job.id, "the run ran inside the calling job, not as a job of its own"
    assert set(report["nodes"]) <= set(job.details()["node_ids"])
    assert len(report["nodes"]) == 2
    del os


def test_to_ray_dataset_outside_a_job_uses_the_default_pool_like_dpf() -> None:
    import ray

    from shoal.data import DataConnector
    from shoal.pools.connect import connected_address

    ray.shutdown()  # whatever connection an earlier test left: this process is connected to none
    frame = sales(stores=3, rows_per_store=4)
    dataset = DataConnector.from_dataframe(frame).to_ray_dataset()
    assert connected_address() == shoal.describe_compute_pool(POOL)["address"], "the pool's cluster"
    back = dataset.to_pandas().sort_values(["STORE", "PRICE"]).reset_index(drop=True)
    expected = frame.sort_values(["STORE", "PRICE"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False)  # strings come back Arrow-backed
    node_ids = {n["node_id"] for n in shoal.describe_compute_pool(POOL)["nodes"]}
    assert {n["NodeID"] for n in ray.nodes() if n["Alive"]} == node_ids, "no Ray instance of its own"

"""Scripts written for Snowflake's Container Runtime (tests/snowflake_scripts/) run unmodified
through ``python -m shoal.compat.snowflake`` on a real 3-node local pool, ``ML_POOL``, which the
scripts name as they would name a Snowflake compute pool (their sessions are created with
``local_testing``, or looked up with ``Session.builder.getOrCreate()``, which gives a session of
the workspace's Snowpark service). Each script prints ``RESULT {json}``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pool_helpers import pool_in_new_home

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SCRIPTS = Path(__file__).parent / "snowflake_scripts"
POOL = "ML_POOL"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from shoal.data.snowpark_service import stop_service

    folder = tmp_path_factory.mktemp("compat-home")
    yield from pool_in_new_home(folder, POOL, 3)
    with pytest.MonkeyPatch.context() as patch:  # for the stop only: later modules see nothing
        patch.setenv("SHOAL_HOME", str(folder))
        stop_service()  # the scripts' sessions started the workspace's Snowpark service


def run_script(name: str, home: Path, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "shoal.compat.snowflake", str(SCRIPTS / name)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SHOAL_HOME": str(home), "SHOAL_COMPUTE_POOL": POOL, **env},
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0, (
        f"{name}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
    assert lines, f"{name} printed no RESULT line:\n{done.stdout[-3000:]}"
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


@pytest.fixture(scope="module")
def sql_mode_run(home: Path) -> dict[str, Any]:
    """The reference's SQL-mode DPF script, run once: run ``sales_by_store`` on ``DPF_STAGE``."""
    return run_script("dpf_sql_mode.py", home)


def test_dpf_sql_mode_on_a_snowpark_dataframe(sql_mode_run: dict[str, Any]) -> None:
    assert sql_mode_run == {"status": True, "progress": ["DONE"], "totals": {"S1": 55, "S2": 55, "S3": 55}}


def test_dpf_stage_mode_with_session_appends_rows_the_caller_reads(home: Path) -> None:
    result = run_script("dpf_stage_mode_with_session.py", home)
    assert result == {"status": "SUCCESS", "rows": [["store_1", 3, 60], ["store_2", 4, 10]]}


def test_imports_of_a_zip_a_directory_and_a_file_under_their_names_on_every_node(home: Path) -> None:
    result = run_script("imports_forms.py", home)
    expected = [42, "OK", 42, "other"]
    assert result["status"] == "DONE", result["logs"]
    assert result["result"] == {"head": expected, "nodes": [expected, expected]}, result["logs"]


def test_submit_from_stage_with_a_stage_path_or_a_relative_entrypoint(home: Path) -> None:
    result = run_script("submit_from_stage.py", home)
    expected = ["hello stage", ["--epochs", "2"]]
    assert result["results"] == {"stage path": expected, "relative": expected}
    assert (
        "entrypoint @ML_DB.PUBLIC.CODE/other/main.py is not in @ML_DB.PUBLIC.CODE/project"
        in result["refused"]
    )
    # the same folder from the command line, with shoal's own names
    env = {**os.environ, "SHOAL_HOME": str(home)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "shoal",
            "job",
            "submit",
            "@CODE/project",
            "--entrypoint",
            "main.py",
            "--pool",
            POOL,
            "--stage-name",
            "payload_stage",
            "--wait",
            "--",
            "x",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.splitlines()[-1]) == ["hello stage", ["x"]]


def test_restore_from_in_another_process(home: Path, sql_mode_run: dict[str, Any]) -> None:
    assert sql_mode_run["status"] is True, "the run to restore finished"
    result = run_script("restore_from.py", home)
    assert result["status"] == "SUCCESS"
    assert result["done"] == ["S1", "S2", "S3"]
    assert "Processing store S2 with 10 rows" in result["log"]


def test_dpf_stage_mode_on_files_of_a_qualified_stage(home: Path) -> None:
    result = run_script("dpf_stage_mode.py", home)
    assert result == {"status": "SUCCESS", "rows": {"north.parquet": 5, "south.parquet": 7}}


def test_many_model_training_get_model_and_inference(home: Path) -> None:
    result = run_script("mmt_train_infer.py", home)
    assert result["slope"] == pytest.approx(2.0, abs=1e-6)
    assert result["rows"] == 20, "the model's own attribute came back"
    assert result["scored"] == 40
    assert result["max_error"] < 1e-6


def test_xgboost_estimator_in_a_two_instance_remote_job(home: Path) -> None:
    result = run_script("xgboost_in_remote_job.py", home)
    assert result["status"] == "DONE"
    assert result["rounds"] == 20
    assert result["rmse"] < 0.5


def test_lightgbm_estimator_in_a_three_instance_remote_job(home: Path) -> None:
    result = run_script("lightgbm_in_remote_job.py", home)
    assert result["status"] == "DONE"
    assert result["instances"] == 3
    assert result["prediction"] == pytest.approx(0.5, abs=0.2)


def test_pytorch_distributor_with_get_context(home: Path) -> None:
    result = run_script("pytorch_distributor.py", home)
    assert result["status"] == "DONE"
    assert result["metrics"] == {"sum": [3.0]}, "ranks 1 and 2 all-reduced across two nodes"


def test_submit_directory_with_per_instance_logs(home: Path) -> None:
    result = run_script("submit_directory_logs.py", home)
    assert result["status"] == "DONE"
    assert result["count"] == 2
    assert "args ['--epochs', '3']" in result["head"]
    assert "hello from instance 0" in result["head"]
    assert "hello from instance 1" in result["worker"]
    assert "hello from instance 0" not in result["worker"]


def test_min_instances_and_the_references_error_wording(home: Path) -> None:
    result = run_script("min_instances.py", home)
    assert 2 <= result["instances"] <= 3
    assert "min_instances (5) exceeds the max_nodes (3)" in result["refused"]
    assert result["requirement_met"], "get_logs(verbose=True) says the instance requirement was met"
    assert result["mentions_ray"], "and shows the Ray start-up lines (the reference's tests look for 'ray')"
    assert not result["quiet_has_it"], "without verbose, only the payload's output"
    import ray

    assert result["dashboard"].startswith("http://127.0.0.1:"), "a pool without a dashboard gets one"
    assert result["dashboard_version"] == ray.__version__, "and it answers"
    assert result["same_dashboard"], "started once, then reused"


def test_a_pool_named_in_a_script_is_created_on_first_use(
    home: Path, pools_made: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import shoal

    monkeypatch.setenv("SHOAL_HOME", str(home))  # the script's workspace: the pool is dropped there
    pools_made.append("TEAM_POOL")
    result = run_script("new_pool_on_first_use.py", home, SHOAL_COMPAT_POOL_NODES="1")
    assert result == {"pool": "TEAM_POOL", "listed": True}
    assert shoal.describe_compute_pool("TEAM_POOL")["max_nodes"] == 1
    shoal.drop_compute_pool("TEAM_POOL")


def test_scale_cluster_shrinks_and_grows_the_pool_the_code_runs_on(home: Path) -> None:
    result = run_script("scale_cluster.py", home)
    assert result == {"before": 3, "down": [True, 2], "up": [True, 3], "cpus": result["cpus"]}
    assert result["cpus"] >= 1


def sleep_forever() -> None:
    import time

    while True:  # the job that holds every node until it is cancelled
        time.sleep(0.2)


def test_scale_cluster_shrinks_right_after_a_run_and_says_which_jobs_keep_nodes(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import pandas as pd

    from shoal.compat.snowflake import cluster
    from shoal.dpf import DPF
    from shoal.jobs import JobStatus, remote
    from waiting import wait_until

    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", POOL)
    assert cluster.scale_cluster(3)
    run = DPF(_count_rows, "scale_runs").run(
        partition_by="K", dataframe=pd.DataFrame({"K": [1, 2, 3, 4]}), run_id="before_shrink"
    )
    assert run.wait(timeout=180, show_progress=False) == "SUCCESS"
    # the run's job may still hold its nodes for a moment: the shrink waits for them
    assert cluster.scale_cluster(1), "a shrink right after a run ends must not fall short"
    assert len(cluster.get_nodes()) == 1
    assert cluster.scale_cluster(3)

    job = remote(POOL, stage_name="scale_runs", target_instances=3)(sleep_forever)()
    try:
        wait_until(lambda: job.status == JobStatus.RUNNING, "the sleeping job to run on 3 nodes", 180)
        monkeypatch.setattr(cluster, "RELEASE_WAIT_S", 1.0)
        with caplog.at_level("WARNING", logger=cluster.__name__):
            assert not cluster.scale_cluster(1)
        assert len(cluster.get_nodes()) == 3
        assert (
            f"compute pool {POOL} keeps 3 node(s), not 1: its other nodes run job(s) {job.id} (RUNNING)"
            in (caplog.text)
        )
    finally:
        job.cancel()
    assert job.wait(timeout=120) == JobStatus.CANCELLED


def _count_rows(data: Any, context: Any) -> None:
    del context
    assert len(data.to_pandas()) == 1


def test_one_session_shared_by_the_script_a_job_and_dpf_workers(home: Path) -> None:
    result = run_script("session_in_jobs_and_partitions.py", home)
    assert result["job_status"] == "DONE"
    assert result["rows_seen_in_job"] == 32, "the job's get_active_session() sees the script's tables"
    assert result["counts"] == {"S1": 10, "S2": 10, "S3": 10, "S4": 2}, "and the script sees the job's"
    assert result["dpf"] is True
    assert result["totals"] == {"S1": 135, "S2": 145, "S3": 155, "S4": 15}, "with_session writes from workers"


def test_column_names_keep_snowflakes_quotes_everywhere_training_code_reads_them(home: Path) -> None:
    result = run_script("snowpark_column_names.py", home)
    names = ['"feature_a"', '"store"', "LABEL"]
    assert result["df_columns"] == names
    for method in ("to_pandas", "arrow", "batches"):
        assert result[method] == names, method
    assert result["torch_keys"] == sorted(names), "rows are keyed by df.columns, quotes included"
    assert result["shard_columns"] == [names, names]
    assert result["shard_rows"] == [4, 4]
    assert result["dpf"] is True, "partition_by='store' names the column '\"store\"' as SQL would"
    assert result["seen"] == {"s1": [names, 12.0], "s2": [names, 16.0]}


def test_sql_that_programs_use_to_set_up_and_split_their_data(home: Path) -> None:
    result = run_script("sql_set_ups.py", home)
    assert result["rows"] == 400
    assert result["scores_in_range"]
    assert result["distinct_scores"] > 50, "UNIFORM(1, 100, RANDOM()) draws a value per row"
    assert result["sample_per_group"] == [["G0", 5], ["G1", 5], ["G2", 5], ["G3", 5]]
    assert result["appended"] == 20, "save_as_table(mode='append') creates, then appends"
    assert result["split_disjoint"]
    assert result["split_covers"] == 400
    assert 0.6 < result["train_share"] < 0.95


def test_the_reference_tuner_in_a_three_instance_remote_job(home: Path) -> None:
    result = run_script("tuner_in_remote_job.py", home)
    assert result["status"] == "DONE"
    assert result["trials"] == 6
    assert result["statuses"] == ["DONE"]
    assert result["best_rmse"] < result["worst_rmse"]
    assert result["model"] == "XGBRegressor"

"""The run and partition lifecycle hooks of an installed plugin fire during real DPF runs on a
2-node pool: in the process driving the run (the run's scheduler, on the head of its job) and in
the workers running the partitions, with the right arguments, for a partition that fails, one
that is retried, and a run whose scheduling fails.

The plugin is a real installed distribution (entry point group ``shoal``); the pool's processes
find it on their ``PYTHONPATH`` and rebuild it from the driver's plugin manifest. It appends one
JSON line per call, with the process and the Ray node it ran on, to a file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import shoal
from plugin_helpers import forget_module, make_distribution
from pool_helpers import pool_in_new_home
from shoal.dpf import DPF, DPFRun, ExecutionOptions, RunStatus
from shoal.errors import RecordError
from shoal.jobs import get_job

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "HOOKRUNS2"
STAGE = "hookruns"

RUN_OBSERVER = """
import json
import os

from shoal import hookimpl


def _record(event, **fields):
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    fields.update(event=event, pid=os.getpid(), node=node, instance=os.environ.get("SHOAL_INSTANCE_ID"))
    with open(os.environ["RUN_HOOKS_LOG"], "a") as log:
        log.write(json.dumps(fields) + "\\n")


@hookimpl
def shoal_before_run(run):
    _record("before_run", run=run.run_id, stage=run.stage_name, mode=run.mode, partitions=run.num_partitions)


@hookimpl
def shoal_after_run(run, status):
    _record("after_run", run=run.run_id, status=status)


@hookimpl
def shoal_on_run_error(run, error):
    _record("on_run_error", run=run.run_id, error=type(error).__name__)


@hookimpl
def shoal_before_partition(partition):
    _record(
        "before_partition",
        run=partition.run_id,
        partition=partition.partition_id,
        attempt=partition.attempt,
        prefix=partition.stage_path_prefix,
    )


@hookimpl
def shoal_after_partition(partition, status):
    _record("after_partition", run=partition.run_id, partition=partition.partition_id,
            attempt=partition.attempt, status=status)


@hookimpl
def shoal_on_partition_error(partition, error):
    _record("on_partition_error", run=partition.run_id, partition=partition.partition_id,
            attempt=partition.attempt, error=repr(error))
"""


@pytest.fixture(scope="module")
def hooks_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("hook-runs")
    site = make_distribution(
        root / "site",
        "run-observer",
        "1.0",
        entry_point="run_observer",
        module="run_observer",
        source=RUN_OBSERVER,
    )
    log = root / "hooks.jsonl"
    saved = {name: os.environ.get(name) for name in ("PYTHONPATH", "RUN_HOOKS_LOG", "SHOAL_HOME")}
    # the pool's processes (scheduler, workers) inherit these: they find the plugin and the log
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(site), saved["PYTHONPATH"]) if p)
    os.environ["RUN_HOOKS_LOG"] = str(log)
    import sys

    sys.path.insert(0, str(site))
    shoal.plugin_manager.set_plugin_manager(None)
    try:
        for _home in pool_in_new_home(root / "home", POOL, 2):
            shoal.create_stage(STAGE, exist_ok=True)
            yield log
    finally:
        sys.path.remove(str(site))
        forget_module("run_observer")
        shoal.plugin_manager.set_plugin_manager(None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(autouse=True)
def _use_pool(hooks_log: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(hooks_log.parent / "home"))


def events_of(log: Path, run_id: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, log.read_text().splitlines()) if e["run"] == run_id]


def retried_and_failing(data: Any, context: Any) -> None:
    """S0 succeeds; S1 fails its first attempt and succeeds on the second; S2 always fails."""
    stage = shoal.get_stage(STAGE)
    if context.partition_id == "S1":
        marker = f"markers/{context.partition_id}"
        if not stage.exists(marker):
            stage.write_text(marker, "tried")
            raise ValueError("first try")
    if context.partition_id == "S2":
        raise KeyError("no such column")
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")


STORES = pd.DataFrame({"STORE": ["S0", "S1", "S2", "S2"], "UNITS": [1, 2, 3, 4]})


def test_run_and_partition_hooks_fire_where_and_when_the_docs_say(hooks_log: Path) -> None:
    run = DPF(retried_and_failing, STAGE, compute_pool=POOL).run(
        partition_by="STORE",
        dataframe=STORES,
        run_id="observed",
        execution_options=ExecutionOptions(max_retries=1),
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.PARTIAL_FAILURE
    job = get_job(DPFRun.restore_from("observed", STAGE).job_id)
    assert job.wait(timeout=60).value == "DONE"
    events = events_of(hooks_log, "observed")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        by_kind.setdefault(event["event"], []).append(event)

    # the run's hooks: once each, in the process driving the run, on the head of its job
    (before,) = by_kind["before_run"]
    (after,) = by_kind["after_run"]
    assert "on_run_error" not in by_kind
    assert (before["stage"], before["mode"], before["partitions"]) == ("HOOKRUNS", "sql", 3)
    assert after["status"] == "PARTIAL_FAILURE"
    assert before["pid"] == after["pid"] != os.getpid()
    assert before["instance"] == "0", "the scheduler runs on the head of the run's job"
    assert events[0] is before, "before_run first"
    assert events[-1] is after, "after_run last"
    job_nodes = set(job.details()["node_ids"])
    assert before["node"] in job_nodes

    # the partitions' hooks: one before/after per attempt, in the workers, with the attempt
    attempts = sorted((e["partition"], e["attempt"]) for e in by_kind["before_partition"])
    assert attempts == [("S0", 1), ("S1", 1), ("S1", 2), ("S2", 1), ("S2", 2)]
    statuses = sorted((e["partition"], e["attempt"], e["status"]) for e in by_kind["after_partition"])
    assert statuses == [
        ("S0", 1, "DONE"),
        ("S1", 1, "FAILED"),
        ("S1", 2, "DONE"),
        ("S2", 1, "FAILED"),
        ("S2", 2, "FAILED"),
    ]
    errors = sorted((e["partition"], e["attempt"], e["error"]) for e in by_kind["on_partition_error"])
    assert errors == [
        ("S1", 1, "ValueError('first try')"),
        ("S2", 1, "KeyError('no such column')"),
        ("S2", 2, "KeyError('no such column')"),
    ]
    for event in by_kind["before_partition"]:
        assert event["prefix"] == f"@HOOKRUNS/observed/{event['partition']}"
    partition_events = [
        e for e in events if e["event"].endswith("partition") or e["event"] == "on_partition_error"
    ]
    assert all(e["pid"] != before["pid"] for e in partition_events), "partitions run in workers"
    assert {e["node"] for e in partition_events} <= job_nodes
    for key, attempt in attempts:  # before, (error,) after: in this order, in one process
        mine = [e for e in partition_events if (e["partition"], e["attempt"]) == (key, attempt)]
        assert mine[0]["event"] == "before_partition"
        assert mine[-1]["event"] == "after_partition"
        assert len({e["pid"] for e in mine}) == 1


def sabotage_the_progress_record(data: Any, context: Any) -> None:
    """Makes the scheduler's next progress write fail: its events folder becomes a file."""
    import shutil

    stage = shoal.get_stage(STAGE)
    events = Path(stage.backend.local_path("broken_scheduler/_shoal/progress/events"))
    shutil.rmtree(events, ignore_errors=True)
    events.write_text("not a folder")
    del data


def test_on_run_error_fires_when_the_scheduling_fails(hooks_log: Path) -> None:
    run = DPF(sabotage_the_progress_record, STAGE, compute_pool=POOL).run(
        partition_by="STORE", dataframe=STORES, run_id="broken_scheduler"
    )
    # the scheduler could not write the run's end: readers see its driver gone, or a progress
    # record that contradicts itself; either way the run is not SUCCESS and they say resume
    try:
        status, message = run.wait(timeout=240, show_progress=False), run.message
    except RecordError as exc:
        status, message = RunStatus.INTERNAL_ERROR, str(exc)
    assert status == RunStatus.INTERNAL_ERROR
    assert "resume" in message
    events = events_of(hooks_log, "broken_scheduler")
    kinds = [e["event"] for e in events if e["event"].endswith("run") or e["event"] == "on_run_error"]
    assert kinds == ["before_run", "on_run_error", "after_run"]
    error = next(e for e in events if e["event"] == "on_run_error")
    assert error["error"] == "StagePathError", "the progress write that failed"

"""The bad-input corpus: what users get wrong, refused with a clear error before anything is written.

Every case of :data:`CASES` states the exact error type, a fragment of the message that tells the
user what to do, and is checked to leave the stages, the job records and the stage catalog exactly
as they were. Cases run against a real 2-node local pool and real stages; the few that need a run
to go on (a write_function that raises, keys and run ids that need encoding, a concurrent run with
the same id) are the tests after the table.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd
import pytest

import shoal
from pool_helpers import pool_in_new_home
from shoal import hooks
from shoal.data.warehouse import connect_warehouse
from shoal.dpf import DPF, DPFRun, PartitionStatus, RunStatus
from shoal.errors import (
    ArtifactsExistError,
    ConfigError,
    PluginError,
    RecordError,
    RunConflictError,
    RunNotFoundError,
    StageExistsError,
    StageNotFoundError,
    StagePathError,
)
from shoal.hookspecs import hookimpl
from shoal.jobs import get_job
from shoal.pools.records import PoolNotFoundError
from shoal.stages import resolve_location
from shoal.testing import temporary_plugin

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "CORPUS2"
STAGE = "corpus"
DONE_RUN = "done_run"  # a finished run, copied and corrupted by the record cases
DONE_MMT = "done_mmt"  # a finished many-model training run


# -- the functions the cases hand to shoal (module level: the workers load them by value) -------


def count_rows(data: Any, context: Any) -> None:
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")


def slow_rows(data: Any, context: Any) -> None:
    time.sleep(2.0)
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")


def one_argument(data: Any) -> None:
    del data


def three_arguments(data: Any, context: Any, extra: Any) -> None:
    del data, context, extra


def keyword_only(data: Any, *, context: Any) -> None:
    del data, context


LOCK = threading.Lock()


def holds_a_lock(data: Any, context: Any) -> None:
    with LOCK:
        del data, context


def fit_mean(data: Any, context: Any) -> float:
    del context
    return float(data.to_pandas()["UNITS"].mean())


def stores(count: int = 3, rows: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "STORE": [f"S{i}" for i in range(count) for _ in range(rows)],
            "UNITS": list(range(count * rows)),
        }
    )


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("corpus-home")
    for ready in pool_in_new_home(home, POOL, 2):
        shoal.create_stage(STAGE, exist_ok=True)
        with connect_warehouse() as connection:
            connection.register("frame", stores())
            connection.execute("CREATE TABLE sales AS SELECT * FROM frame")
        run = DPF(count_rows, STAGE, compute_pool=POOL).run(
            partition_by="STORE", dataframe=stores(), run_id=DONE_RUN
        )
        assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
        from shoal.mmt import ManyModelTraining

        models = ManyModelTraining(fit_mean, STAGE, compute_pool=POOL).run(
            partition_by="STORE", dataframe=stores(), run_id=DONE_MMT
        )
        assert models.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
        # a run's job writes its status and logs after the run ended: the cases compare files
        for run_id in (DONE_RUN, DONE_MMT):
            job = get_job(DPFRun.restore_from(run_id, STAGE).job_id)
            assert job.wait(timeout=60).value == "DONE", f"the job of {run_id} did not end: {job.status}"
        yield ready


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", POOL)


def snapshot(home: Path) -> dict[str, str]:
    """Every file of the stages, the job records and the stage catalog, with a digest of its bytes."""
    warehouse = home / "warehouse.duckdb"
    found: dict[str, str] = {"warehouse.duckdb": hashlib.sha256(warehouse.read_bytes()).hexdigest()}
    for top in ("stages", "jobs", "catalog", "pools"):
        root = home / top
        if not root.exists():
            continue
        for path in sorted(root.rglob("*")):
            name = str(path.relative_to(home))
            if path.is_file() and not name.startswith(f"pools/{POOL}/"):  # the running pool's own state
                found[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# -- the cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One bad input: ``act`` must raise exactly ``error`` with ``fragment`` in its message.
    ``setup`` runs first, outside the nothing-written check (it writes what the case breaks)."""

    id: str
    act: Callable[[], object]
    error: type[BaseException]
    fragment: str
    setup: Callable[[], object] | None = None


def dpf_run(**kwargs: Any) -> Callable[[], object]:
    """A DPF run of ``count_rows`` on the corpus stage, with defaults a case overrides."""

    def act() -> object:
        options: dict[str, Any] = {"partition_by": "STORE", "dataframe": stores(), "run_id": "refused_run"}
        options.update(kwargs)
        if "query" in options:
            from shoal.data import DataConnector

            options["dataframe"] = DataConnector.from_sql(options.pop("query"))
        function = options.pop("function", count_rows)
        stage_name = options.pop("stage_name", STAGE)
        pool = options.pop("compute_pool", POOL)
        return DPF(function, stage_name, compute_pool=pool).run(**options)

    return act


def stage_file(path: str) -> Callable[[], object]:
    return lambda: shoal.get_stage(STAGE).write_text(path, "x")


def upload_as(filename: str) -> Callable[[], object]:
    """``context.upload_to_stage`` under ``filename``, from a partition's context (as a worker builds it)."""

    def act() -> object:
        from shoal.dpf.context import PartitionContext

        context = PartitionContext(shoal.get_stage(STAGE), DONE_RUN, "S0", None, None)
        return context.upload_to_stage({"a": 1}, filename)

    return act


def download_as(filename: str) -> Callable[[], object]:
    def act() -> object:
        from shoal.dpf.context import PartitionContext

        context = PartitionContext(shoal.get_stage(STAGE), DONE_RUN, "S0", None, None)
        return context.download_from_stage(filename)

    return act


def done_job() -> Any:
    """The job that ran the finished run."""
    return get_job(DPFRun.restore_from(DONE_RUN, STAGE).job_id)


def not_a_model(path: str) -> Any:
    raise ValueError(f"{Path(path).name} is not a model file this reader knows")


def read_with(read_function: Callable[[str], Any]) -> Callable[[], object]:
    def act() -> object:
        details = DPFRun.restore_from(DONE_RUN, STAGE).partition_details
        return details["S0"].stage_artifacts_manager.get("rows.pkl", read_function=read_function)

    return act


def copy_of_done_run(run_id: str, broken: str, text: str) -> Callable[[], object]:
    """Setup: ``run_id`` is a copy of the finished run with its record ``broken`` replaced by ``text``."""

    def setup() -> None:
        stage = shoal.get_stage(STAGE)
        stage.remove(run_id, missing_ok=True)
        for path in stage.list(DONE_RUN):
            stage.write_bytes(run_id + path[len(DONE_RUN) :], stage.read_bytes(path))
        definition = json.loads(stage.read_text(f"{run_id}/_shoal/run.json"))
        definition["run_id"] = run_id
        stage.write_text(f"{run_id}/_shoal/run.json", json.dumps(definition))
        stage.write_text(f"{run_id}/_shoal/{broken}", text)

    return setup


def submit_with_env(name: str, value: str) -> Callable[[], object]:
    """:func:`submit` with the environment variable ``name`` set to ``value`` for the call only."""

    def act() -> object:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv(name, value)
            return submit()()

    return act


def corrupt_pool_record() -> None:
    folder = Path(shoal.workspace.workspace_dir("pools", "BROKEN_POOL"))
    (folder / "pool.json").write_text('{"name": "BROKEN_POOL", "backend": "lo')


def submit(**kwargs: Any) -> Callable[[], object]:
    def act() -> object:
        from shoal.jobs import submit_file

        script = Path(shoal.workspace.workspace_dir("scripts")) / "hello.py"
        script.write_text("print('hello')\n")
        options: dict[str, Any] = {"stage_name": STAGE}
        options.update(kwargs)
        pool = options.pop("compute_pool", POOL)
        return submit_file(str(script), pool, **options)

    return act


class FunctionsA:
    @hookimpl
    def shoal_partition_functions(self) -> Any:
        from shoal.contributions import PartitionFunctionSpec

        return [PartitionFunctionSpec(name="shared_name", function=count_rows)]


class FunctionsB(FunctionsA):
    pass


def conflicting_plugins() -> object:
    with temporary_plugin(FunctionsA(), "functions_a"), temporary_plugin(FunctionsB(), "functions_b"):
        return DPF("shared_name", STAGE)


def cli(*args: str) -> Callable[[], object]:
    """A ``shoal`` command, with its errors raised rather than printed."""

    def act() -> object:
        from shoal.cli import cli as shoal_cli

        return shoal_cli.main(list(args), standalone_mode=False)

    return act


def cli_run_on_table(table: str) -> Callable[[], object]:
    return cli(
        "dpf",
        "run",
        "test_bad_input:count_rows",
        "--table",
        table,
        "--partition-by",
        "STORE",
        "--stage-name",
        STAGE,
        "--run-id",
        "refused_run",
    )


def from_sql(query: str) -> Callable[[], object]:
    return dpf_run(dataframe=None, query=query)


def mmt_training(function: Callable[..., Any]) -> Callable[[], object]:
    from shoal.mmt import ManyModelTraining

    return lambda: ManyModelTraining(function, STAGE)


def mmt_inference(function: Callable[..., Any]) -> Callable[[], object]:
    from shoal.mmt import ManyModelInference

    return lambda: ManyModelInference(function, STAGE, DONE_RUN)


NULL_CLASH = pd.DataFrame({"STORE": ["__NULL__", None, "S1"], "UNITS": [1, 2, 3]})
INJECTIONS = [
    'STORE"; DROP TABLE sales; --',
    "STORE; DELETE FROM sales",
    "STORE -- comment",
    "STORE' OR '1'='1",
]

CASES = [
    # stage names and locations
    Case("stage-name-with-space", lambda: shoal.create_stage("bad name"), ConfigError, "stage name"),
    Case("stage-name-with-quote", lambda: shoal.create_stage('bad"name'), ConfigError, "stage name"),
    Case("stage-name-with-semicolon", lambda: shoal.create_stage("s;drop"), ConfigError, "stage name"),
    Case("stage-name-starts-with-digit", lambda: shoal.create_stage("1stage"), ConfigError, "stage name"),
    Case("stage-exists", lambda: shoal.create_stage(STAGE), StageExistsError, "exist_ok=True"),
    Case("stage-unknown", lambda: shoal.get_stage("@NO_SUCH_STAGE"), StageNotFoundError, "create_stage"),
    Case("stage-path-dotdot", stage_file("../outside.txt"), StagePathError, "inside the stage"),
    Case("stage-path-absolute", stage_file("/etc/outside.txt"), StagePathError, "relative"),
    Case("dpf-bad-stage-name", dpf_run(stage_name="runs; drop"), ConfigError, "stage name"),
    Case("dpf-stage-location-unknown", dpf_run(stage_name="@NO_SUCH/x"), ConfigError, "stage name"),
    # artifact file names
    Case("stage-location-bare-at", lambda: resolve_location("@"), ConfigError, "names no stage"),
    Case(
        "stage-location-dotdot", lambda: resolve_location(f"@{STAGE}/a/../b"), StagePathError, "may not leave"
    ),
    Case(
        "stage-url-scheme-unknown",
        lambda: shoal.create_stage("NEW_STAGE", url="nosuch://bucket/x"),
        ConfigError,
        "Install a plugin",
    ),
    Case("stage-path-nul", stage_file("a\x00b"), StagePathError, "NUL byte"),
    Case("artifact-nul", upload_as("model\x00.pkl"), ConfigError, "control character"),
    Case("artifact-dotdot", upload_as("../escape.pkl"), StagePathError, "use a flat name"),
    Case("artifact-absolute", upload_as("/tmp/escape.pkl"), StagePathError, "use a flat name"),
    Case("artifact-separator", upload_as("sub/model.pkl"), StagePathError, "use a flat name"),
    Case("artifact-backslash", upload_as("sub\\model.pkl"), StagePathError, "use a flat name"),
    Case("artifact-empty", upload_as(""), ConfigError, "use a flat name"),
    Case("download-dotdot", download_as(".."), ConfigError, "use a flat name"),
    # the input and its keys
    Case(
        "unknown-partition-column", dpf_run(partition_by="REGION"), ConfigError, "columns are: STORE, UNITS"
    ),
    Case("unknown-column", dpf_run(partition_by="REGION"), ConfigError, "its columns are: STORE, UNITS"),
    Case("read-function-raises", read_with(not_a_model), ValueError, "rows.pkl is not a model file"),
    Case(
        "wait-timeout-not-a-number",
        lambda: DPFRun.restore_from(DONE_RUN, STAGE).wait(timeout="10"),
        ConfigError,
        "-1 to wait",
    ),
    Case("job-wait-timeout-not-a-number", lambda: done_job().wait(timeout="soon"), ConfigError, "-1 to wait"),
    Case(
        "job-logs-unknown-instance",
        lambda: done_job().get_logs(instance_id=99),
        ConfigError,
        "instance_id 99",
    ),
    Case("job-logs-negative-instance", lambda: done_job().get_logs(instance_id=-1), ConfigError, "Omit it"),
    Case(
        "get-model-unknown-key",
        lambda: shoal.mmt.ManyModelRun.restore_from(DONE_MMT, STAGE).get_model("S9"),
        KeyError,
        "has no partition 'S9'; its partitions are: 'S0', 'S1', 'S2'",
    ),
    Case("unknown-estimator", lambda: hooks.get_estimator("nope"), ConfigError, "Choose one of"),
    Case("empty-input", dpf_run(dataframe=stores().iloc[0:0]), ConfigError, "no rows"),
    Case("null-key-clash", dpf_run(dataframe=NULL_CLASH), ConfigError, "__NULL__"),
    Case("partition-by-not-a-name", dpf_run(partition_by=3), ConfigError, "column name or a Partitioner"),
    *[
        Case(f"partition-by-injection-{i}", dpf_run(partition_by=text), ConfigError, "is not in the input")
        for i, text in enumerate(INJECTIONS)
    ],
    *[
        Case(f"table-name-injection-{i}", cli_run_on_table(text), ConfigError, "does not exist")
        for i, text in enumerate(['sales"; DROP TABLE sales; --', "sales; DELETE FROM sales", "sales -- x"])
    ],
    Case(
        "sql-two-statements",
        from_sql("SELECT * FROM sales; DROP TABLE sales"),
        ConfigError,
        "exactly one query",
    ),
    Case("sql-not-a-select", from_sql("DELETE FROM sales"), ConfigError, "returns rows"),
    # run ids and options
    Case("run-id-dotdot", dpf_run(run_id=".."), ConfigError, "names a single folder"),
    Case("run-id-separator", dpf_run(run_id="a/b"), ConfigError, "path separator"),
    Case("run-id-escapes-the-stage", dpf_run(run_id="../../etc"), ConfigError, "path separator"),
    Case("run-id-backslash", dpf_run(run_id="..\\x"), ConfigError, "path separator"),
    Case("run-id-home", dpf_run(run_id="~root"), ConfigError, "reserved"),
    Case("run-id-reserved", dpf_run(run_id="_shoal"), ConfigError, "reserved"),
    Case("run-id-empty", dpf_run(run_id=""), ConfigError, "non-empty string"),
    Case("run-id-control-char", dpf_run(run_id="a\nb"), ConfigError, "control character"),
    Case("run-id-too-long", dpf_run(run_id="r" * 300), ConfigError, "longer than 255 bytes"),
    Case(
        "on-existing-unknown", dpf_run(on_existing_artifacts="replace"), ConfigError, "'error' or 'overwrite'"
    ),
    Case(
        "existing-artifacts",
        dpf_run(run_id=DONE_RUN),
        ArtifactsExistError,
        "on_existing_artifacts='overwrite'",
    ),
    # functions
    Case(
        "dpf-one-argument", lambda: DPF(one_argument, STAGE), ConfigError, "exactly 2 positional parameters"
    ),
    Case("dpf-three-arguments", lambda: DPF(three_arguments, STAGE), ConfigError, "exactly 2 positional"),
    Case("dpf-keyword-only", lambda: DPF(keyword_only, STAGE), ConfigError, "exactly 2 positional"),
    Case("dpf-not-callable", lambda: DPF(42, STAGE), TypeError, "func(data_connector, context)"),  # type: ignore[arg-type]
    Case("mmt-train-arity", mmt_training(one_argument), ConfigError, "train_func(data_connector, context)"),
    Case("mmt-infer-arity", mmt_inference(count_rows), ConfigError, "(data_connector, model, context)"),
    Case("unpicklable-function", dpf_run(function=holds_a_lock), ConfigError, "create that object inside"),
    # instances, pools and plugins
    Case("job-fractional-instances", submit(target_instances=1.5), ConfigError, "positive integer"),
    Case("job-text-instances", submit(target_instances="2"), ConfigError, "positive integer"),
    Case("job-zero-instances", submit(target_instances=0), ConfigError, "positive integer"),
    Case("job-negative-instances", submit(target_instances=-2), ConfigError, "positive integer"),
    Case("job-min-above-target", submit(target_instances=1, min_instances=2), ConfigError, "must not exceed"),
    Case("job-min-above-pool", submit(target_instances=5, min_instances=5), ConfigError, "max_nodes"),
    Case(
        "job-zero-instances-timeout", submit(instances_timeout=0), ConfigError, "positive number of seconds"
    ),
    Case("job-text-instances-timeout", submit(instances_timeout="soon"), ConfigError, "number of seconds"),
    Case(
        "job-env-instances-timeout",
        submit_with_env("SHOAL_INSTANCES_TIMEOUT", "10m"),
        ConfigError,
        "SHOAL_INSTANCES_TIMEOUT must be a number of seconds, got '10m'",
    ),
    Case("job-name-path", submit(name="../../escape"), ConfigError, "not an identifier"),
    Case("job-name-separator", submit(name="a/b"), ConfigError, "not an identifier"),
    Case("job-name-quote", submit(name="o'brien"), ConfigError, "not an identifier"),
    Case("job-unknown-pool", submit(compute_pool="NO_SUCH_POOL"), PoolNotFoundError, "create_compute_pool"),
    Case("dpf-unknown-pool", dpf_run(compute_pool="NO_SUCH_POOL"), PoolNotFoundError, "Existing pools"),
    Case("pool-zero-nodes", lambda: shoal.create_compute_pool("P0", max_nodes=0), ConfigError, "at least 1"),
    Case(
        "pool-min-above-max",
        lambda: shoal.create_compute_pool("P1", min_nodes=3, max_nodes=2),
        ConfigError,
        "must not exceed",
    ),
    Case(
        "pool-unknown-backend",
        lambda: shoal.create_compute_pool("P2", max_nodes=1, backend="nope"),
        ConfigError,
        "backend",
    ),
    Case(
        "unknown-partition-function",
        lambda: DPF("no_such_function", STAGE),
        ConfigError,
        "partition function",
    ),
    Case("conflicting-plugins", conflicting_plugins, PluginError, "'shared_name' provided by"),
    # corrupted records
    Case(
        "truncated-run-json",
        lambda: DPFRun.restore_from("broken_def", STAGE),
        RecordError,
        "broken_def/_shoal/run.json",
        setup=copy_of_done_run("broken_def", "run.json", '{"run_id": "broken_d'),
    ),
    Case(
        "empty-run-json",
        lambda: DPFRun.restore_from("empty_def", STAGE),
        RecordError,
        "on_existing_artifacts='overwrite'",
        setup=copy_of_done_run("empty_def", "run.json", ""),
    ),
    Case(
        "empty-partitions-json",
        lambda: DPFRun.restore_from("empty_parts", STAGE),
        RecordError,
        "empty_parts/_shoal/partitions.json",
        setup=copy_of_done_run("empty_parts", "partitions.json", ""),
    ),
    Case(
        "truncated-partitions-json",
        lambda: DPFRun.restore_from("broken_parts", STAGE),
        RecordError,
        "broken_parts/_shoal/partitions.json",
        setup=copy_of_done_run("broken_parts", "partitions.json", '[{"partition_id": "S'),
    ),
    Case(
        "truncated-progress-state",
        lambda: DPFRun.restore_from("broken_state", STAGE).status,
        RecordError,
        "broken_state/_shoal/progress/state.json",
        setup=copy_of_done_run("broken_state", "progress/state.json", '{"status": "SUC'),
    ),
    Case(
        "truncated-progress-events",
        lambda: DPFRun.restore_from("broken_events", STAGE).partition_details,
        RecordError,
        "resume() runs the partitions",
        setup=copy_of_done_run("broken_events", "progress/events/999999999.jsonl", '{"partition_id": "S'),
    ),
    Case(
        "unknown-run",
        lambda: DPFRun.restore_from("no_such_run", STAGE),
        RunNotFoundError,
        "No DPF run 'no_such_run'",
    ),
    Case(
        "corrupt-pool-record",
        lambda: shoal.describe_compute_pool("BROKEN_POOL"),
        RecordError,
        "shoal pool drop",
        setup=corrupt_pool_record,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_refused_and_nothing_is_written(case: Case, home: Path) -> None:
    if case.setup is not None:
        case.setup()
    before = snapshot(home)
    with pytest.raises(case.error, match=re.escape(case.fragment)) as caught:
        case.act()
    assert caught.type is case.error, f"a subclass was raised: {caught.type.__name__}: {caught.value}"
    assert snapshot(home) == before, "a refused input left files behind or changed some"


def test_the_corpus_has_forty_cases_at_least() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


# -- refused inputs that are runs: they start, and the refusal is a partition's, or a second run's ----


def test_a_submission_that_fails_half_way_leaves_no_job(home: Path, tmp_path: Path) -> None:
    from shoal.jobs import list_jobs, submit_directory

    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("print('hello')\n")
    (app / "zz_data.csv").symlink_to(tmp_path / "gone.csv")  # read after main.py is uploaded
    jobs_before = set(list_jobs(limit=0)["name"])
    before = snapshot(home)
    with pytest.raises(ConfigError, match=r"cannot read .*zz_data\.csv of the job's payload"):
        submit_directory(str(app), POOL, entrypoint="main.py", stage_name=STAGE)
    assert snapshot(home) == before, "the payload's files uploaded before the failure are removed"
    assert set(list_jobs(limit=0)["name"]) == jobs_before, "no job record is left"


def test_partitioning_that_fails_half_way_leaves_no_run_folder(home: Path) -> None:
    import duckdb

    query = (
        "SELECT STORE, CASE WHEN UNITS < 3 THEN UNITS ELSE CAST('n/a ' || STORE AS INTEGER) END AS UNITS "
        "FROM sales"
    )
    before = snapshot(home)
    with pytest.raises(duckdb.ConversionException, match="n/a S"):  # raised while the parquet is written
        dpf_run(query=query, run_id="half_partitioned")()
    assert not shoal.get_stage(STAGE).list("half_partitioned"), "the run's folder is removed"
    assert snapshot(home) == before


def test_overwrite_refused_for_bad_input_keeps_the_earlier_run(home: Path) -> None:
    before = snapshot(home)
    with pytest.raises(ConfigError, match="is not in the input"):
        dpf_run(run_id=DONE_RUN, on_existing_artifacts="overwrite", partition_by="REGION")()
    assert snapshot(home) == before
    details = DPFRun.restore_from(DONE_RUN, STAGE).partition_details
    assert {k: d.stage_artifacts_manager.get("rows.pkl") for k, d in details.items()} == {
        "S0": 2,
        "S1": 2,
        "S2": 2,
    }


def write_then_fail(data: Any, context: Any) -> None:
    def broken_writer(obj: Any, path: str) -> None:
        Path(path).write_text("half")
        raise OSError(f"disk full while writing {context.partition_id}")

    if context.partition_id == "S1":
        context.upload_to_stage(data.to_pandas(), "frame.parquet", write_function=broken_writer)
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")


def test_a_write_function_that_raises_fails_its_partition_only() -> None:
    run = DPF(write_then_fail, STAGE).run(
        partition_by="STORE",
        dataframe=stores(),
        run_id="write_fails",
        execution_options=shoal.dpf.ExecutionOptions(max_retries=0),
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.PARTIAL_FAILURE
    details = run.partition_details
    assert details["S1"].status == PartitionStatus.FAILED
    assert details["S1"].error == "OSError: disk full while writing S1"
    assert "OSError: disk full while writing S1" in details["S1"].logs
    assert details["S1"].stage_artifacts_manager.list() == ["train.log"], "the half-written file is not kept"
    assert details["S0"].status == details["S2"].status == PartitionStatus.DONE
    assert details["S2"].stage_artifacts_manager.get("rows.pkl") == 2


def good_then_broken(data: Any, context: Any) -> None:
    """Saves a good model, then a second one whose writer fails half-way (S1: the error fails the
    partition; S2: the function catches it and goes on)."""
    context.upload_to_stage({"good": context.partition_id}, "model.pkl")

    def broken(obj: Any, path: str) -> None:
        Path(path).write_bytes(cloudpickle.dumps(obj)[:5])
        raise OSError("disk full")

    if context.partition_id == "S1":
        context.upload_to_stage({"bad": 1}, "model.pkl", write_function=broken)
    if context.partition_id == "S2":
        with contextlib.suppress(OSError):
            context.upload_to_stage({"bad": 1}, "model.pkl", write_function=broken)
        assert context.download_from_stage("model.pkl") == {"good": "S2"}


def test_a_failed_write_leaves_the_file_written_before_it(home: Path) -> None:
    run = DPF(good_then_broken, STAGE).run(
        partition_by="STORE",
        dataframe=stores(),
        run_id="write_fails_late",
        execution_options=shoal.dpf.ExecutionOptions(max_retries=0),
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.PARTIAL_FAILURE
    details = run.partition_details
    assert details["S1"].status == PartitionStatus.FAILED
    assert details["S1"].error == "OSError: disk full"
    assert [details[k].status for k in ("S0", "S2")] == [PartitionStatus.DONE] * 2
    for key in ("S0", "S1", "S2"):
        assert details[key].stage_artifacts_manager.get("model.pkl") == {"good": key}
    left = [p.name for p in (home / "stages" / STAGE.upper() / "write_fails_late").rglob(".shoal-tmp-*")]
    assert left == [], "temporary files left after the run ended"


def break_own_log(data: Any, context: Any) -> None:
    """Makes shoal's own write of this partition's log fail (a directory where the file goes)."""
    if context.partition_id == "S2":
        target = context._files.local_target("train.log")
        Path(target).mkdir(parents=True)
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")


def test_a_failure_in_shoals_own_handling_fails_the_partition_not_the_run() -> None:
    run = DPF(break_own_log, STAGE).run(
        partition_by="STORE",
        dataframe=stores(),
        run_id="log_fails",
        execution_options=shoal.dpf.ExecutionOptions(max_retries=0),
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.PARTIAL_FAILURE
    details = run.partition_details
    assert details["S2"].status == PartitionStatus.FAILED
    assert details["S2"].error is not None
    assert "shoal could not finish partition 'S2' (attempt 1)" in details["S2"].error
    assert "IsADirectoryError" in details["S2"].error
    assert details["S0"].status == details["S1"].status == PartitionStatus.DONE


def unsaveable_model(data: Any, context: Any) -> Any:
    del data, context
    return threading.Lock()


def test_a_model_that_cannot_be_saved_fails_at_once_with_what_to_do() -> None:
    from shoal.mmt import ManyModelTraining

    run = ManyModelTraining(unsaveable_model, STAGE).run(
        partition_by="STORE", dataframe=stores(count=1), run_id="unsaveable"
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.FAILURE
    detail = run.partition_details["S0"]
    assert detail.status == PartitionStatus.FAILED
    assert detail.attempts == 1, (detail.error, detail.logs)
    assert detail.error is not None
    assert "_thread.lock) cannot be saved with PickleSerde" in detail.error
    assert "ManyModelTraining(serde=...)" in detail.error


#: Keys that are not folder names as they are: each must get a folder of its own in the run's.
KEYS = [
    "..",
    ".",
    "",
    "_shoal",
    "_shoal_x",
    "o'brien",
    "a/b",
    "a%2Fb",
    "%41",
    "~home",
    "ü ñ",
    "k" * 300,
    "line\nbreak",
    "S1",
    "s1",
]


def train_echo(data: Any, context: Any) -> dict[str, Any]:
    print(f"training key={context.partition_id!r}")
    return {"key": context.partition_id, "rows": len(data.to_pandas())}


def keyed_frame(keys: list[Any]) -> pd.DataFrame:
    return pd.DataFrame({"KEY": [*keys, None], "UNITS": range(len(keys) + 1)})


def duckdb_relation(frame: pd.DataFrame) -> Any:
    import duckdb

    return duckdb.connect().from_df(frame)


def assert_one_folder_each(root: Path, filename: str, count: int) -> list[str]:
    """Every ``filename`` under the run's folder ``root``: ``count`` of them, each in a folder of its
    own (also on a case-insensitive file system), none in ``_shoal`` or the run's root, none outside."""
    found = sorted(str(p.relative_to(root)) for p in root.rglob(filename))
    assert len(found) == count, f"one {filename} per key, none shared: {found}"
    folders = [f.rsplit("/", 1)[0] for f in found if "/" in f]
    assert len(folders) == count, f"a {filename} in the run's own root: {found}"
    assert len({f.casefold() for f in folders}) == count, f"folders that differ only in case: {folders}"
    assert not any(f.split("/")[0] == "_shoal" for f in folders), found
    assert not (root.parent / filename).exists(), f"{filename} written outside the run's folder"
    return found


@pytest.mark.parametrize("source", ["pandas", "duckdb"])
def test_keys_that_are_not_folder_names_run_in_folders_of_their_own(home: Path, source: str) -> None:
    from shoal.mmt import ManyModelTraining

    frame = keyed_frame(KEYS)
    run_id = f"odd_keys_{source}"
    data = frame if source == "pandas" else duckdb_relation(frame)
    run = ManyModelTraining(train_echo, STAGE).run(partition_by="KEY", dataframe=data, run_id=run_id)
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    details = run.partition_details
    assert sorted(details) == sorted([*KEYS, "__NULL__"])
    for key, detail in details.items():
        assert detail.status == PartitionStatus.DONE, (key, detail.error)
        assert run.get_model(key) == {"key": key, "rows": 1}
        assert f"training key={key!r}" in detail.logs
        assert f"===== partition {key} attempt 1: DONE =====" in detail.logs
    root = home / "stages" / STAGE.upper() / run_id
    models = assert_one_folder_each(root, "model.pkl", len(KEYS) + 1)
    assert "a/b/model.pkl" in models, "'/' in a key still nests"
    assert "S1/model.pkl" in models, "a safe key stays readable"
    assert "o%27brien/model.pkl" in models
    assert "%2E./model.pkl" in models
    assert len(assert_one_folder_each(root, "train.log", len(KEYS) + 1)) == len(KEYS) + 1
    listed = run.models()
    assert sorted(listed["partition_id"]) == sorted([*KEYS, "__NULL__"])


def test_int_keys_read_back_by_value(home: Path) -> None:
    from shoal.mmt import ManyModelTraining

    frame = pd.DataFrame({"STORE_ID": [17, 17, 3], "UNITS": [1, 2, 3]})
    run = ManyModelTraining(train_echo, STAGE).run(
        partition_by="STORE_ID", dataframe=frame, run_id="int_keys"
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    assert sorted(run.partition_details) == ["17", "3"]
    assert run.get_model(17) == {"key": "17", "rows": 2}
    assert run.get_model("3") == {"key": "3", "rows": 1}
    assert (home / "stages" / STAGE.upper() / "int_keys" / "17" / "model.pkl").is_file()


@pytest.mark.parametrize("run_id", ["o'brien", "v1+2(b)", "a.b*c", "x%y_[z]*", "x' UNION SELECT 1 --"])
def test_run_ids_with_sql_and_regex_characters_query_their_artifacts(run_id: str) -> None:
    def write_frame(data: Any, context: Any) -> None:
        context.upload_to_stage(
            data.to_pandas(), "rows.parquet", write_function=lambda frame, path: frame.to_parquet(path)
        )

    run = DPF(write_frame, STAGE).run(partition_by="STORE", dataframe=stores(), run_id=run_id)
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    table = run.query_artifacts("rows.parquet").df()
    assert sorted(table["partition_id"].unique()) == ["S0", "S1", "S2"]
    assert sorted(table["UNITS"]) == list(range(6))


def test_a_run_id_in_use_is_refused_and_the_running_run_is_untouched(home: Path) -> None:
    first = DPF(slow_rows, STAGE).run(partition_by="STORE", dataframe=stores(), run_id="busy_run")
    for on_existing in ("error", "overwrite"):
        with pytest.raises(RunConflictError, match="two runs cannot share a run_id"):
            DPF(count_rows, STAGE).run(
                partition_by="STORE",
                dataframe=stores(count=5),
                run_id="busy_run",
                on_existing_artifacts=on_existing,
            )
    assert first.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    assert sorted(first.partition_details) == ["S0", "S1", "S2"], (
        "the refused run's 5 partitions never got in"
    )


def test_two_starts_of_one_run_id_at_once_let_one_through() -> None:
    barrier = threading.Barrier(2)
    outcomes: list[object] = []

    def start() -> None:
        barrier.wait()
        try:
            outcomes.append(
                DPF(count_rows, STAGE).run(
                    partition_by="STORE",
                    dataframe=stores(),
                    run_id="raced",
                    on_existing_artifacts="overwrite",
                )
            )
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    runs = [o for o in outcomes if isinstance(o, DPFRun)]
    refused = [o for o in outcomes if isinstance(o, RunConflictError)]
    assert len(runs) == 1, outcomes
    assert len(refused) == 1, outcomes
    assert runs[0].wait(timeout=240, show_progress=False) == RunStatus.SUCCESS


def test_resume_of_a_run_whose_progress_is_unreadable_runs_every_partition_again() -> None:
    run = DPF(count_rows, STAGE, compute_pool=POOL).run(
        partition_by="STORE", dataframe=stores(), run_id="lost_progress"
    )
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    job = get_job(run.job_id)  # resume() refuses while the run's job still runs
    assert job.wait(timeout=60).value == "DONE", f"the run's job did not end: {job.details()}"
    shoal.get_stage(STAGE).write_text("lost_progress/_shoal/progress/state.json", '{"status": "IN_PROGR')
    restored = DPFRun.restore_from("lost_progress", STAGE)
    with pytest.raises(RecordError, match=re.escape("lost_progress/_shoal/progress/state.json")):
        restored.wait(timeout=10, show_progress=False)
    resumed = restored.resume()
    assert resumed.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    details = resumed.partition_details
    assert {k: (d.status, d.attempts) for k, d in details.items()} == {
        key: (PartitionStatus.DONE, 1) for key in ("S0", "S1", "S2")
    }
    assert details["S1"].stage_artifacts_manager.get("rows.pkl") == 2


def damage(text: str, how: str) -> str:
    """``text`` cut as a crash or a full disk would cut it: ``half`` (mid-line), ``empty``, or
    ``line`` (at the end of its first line: only a count can tell)."""
    if how == "empty":
        return ""
    if how == "line":
        return text[: text.index("\n") + 1]
    half = text[: len(text) // 2]
    return half.rstrip("\n") or half[:1]


def _file_holding_a_final_record_after_its_first_line(stage: Any, events: list[str]) -> str | None:
    """The last event file in which a line after the first is some partition's final record:
    cutting it at the end of its first line loses that record, which only the counts can tell.
    (The run's last flush may hold a single record, so the last file is not always one; None
    when no file is.)"""
    last_seen: dict[str, tuple[int, int]] = {}
    for file_index, path in enumerate(events):
        for line_index, line in enumerate(stage.read_text(path).splitlines()):
            last_seen[json.loads(line)["partition_id"]] = (file_index, line_index)
    candidates = sorted({file_index for file_index, line_index in last_seen.values() if line_index >= 1})
    return events[candidates[-1]] if candidates else None


@pytest.mark.parametrize(
    ("record", "how"),
    [
        ("state.json", "half"),
        ("state.json", "empty"),
        ("events", "half"),
        ("events", "empty"),
        ("events", "line"),
    ],
)
def test_a_damaged_progress_record_is_an_error_that_says_resume_and_resume_finishes(
    record: str, how: str
) -> None:
    run_id = f"damaged_{record.split('.')[0]}_{how}"
    run = DPF(count_rows, STAGE).run(partition_by="STORE", dataframe=stores(), run_id=run_id)
    assert run.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    job = get_job(run.job_id)  # resume() refuses while the run's job still runs
    assert job.wait(timeout=60).value == "DONE", f"the run's job did not end: {job.details()}"
    stage = shoal.get_stage(STAGE)
    progress = f"{run_id}/_shoal/progress"
    if record == "events":
        events = sorted(
            stage.list(f"{progress}/events"), key=lambda p: int(p.rsplit("/", 1)[1].split(".")[0])
        )
        assert events, "the finished run has progress events"
        target = events[-1]
        if how == "line":
            found = _file_holding_a_final_record_after_its_first_line(stage, events)
            # every flush held one final record at most: the cut at a line end loses the whole last file
            target, how = (found, how) if found is not None else (events[-1], "empty")
    else:
        target = f"{progress}/{record}"
    stage.write_text(target, damage(stage.read_text(target), how))
    restored = DPFRun.restore_from(run_id, STAGE)
    with pytest.raises(RecordError) as caught:
        restored.wait(timeout=10, show_progress=False)
    message = str(caught.value)
    assert f"DPF run {run_id!r}" in message
    assert f"{progress}/" in message
    assert f"DPFRun.restore_from({run_id!r}, {STAGE.upper()!r}).resume()" in message
    with pytest.raises(RecordError):
        _ = restored.partition_details
    resumed = restored.resume()
    assert resumed.wait(timeout=240, show_progress=False) == RunStatus.SUCCESS
    details = resumed.partition_details
    assert {k: d.status for k, d in details.items()} == dict.fromkeys(
        ("S0", "S1", "S2"), PartitionStatus.DONE
    )
    assert {k: d.stage_artifacts_manager.get("rows.pkl") for k, d in details.items()} == {
        "S0": 2,
        "S1": 2,
        "S2": 2,
    }


@pytest.mark.parametrize("how", ["half", "empty"])
def test_a_damaged_job_record_names_the_job_and_listings_go_on(home: Path, how: str) -> None:
    from click.testing import CliRunner

    from shoal.cli import cli
    from shoal.jobs import list_jobs

    damaged = submit()()
    other = submit()()
    assert damaged.wait(timeout=120).value == other.wait(timeout=120).value == "DONE"
    stage = shoal.get_stage(STAGE)
    status_path = f"{damaged.stage_path.split('/', 1)[1]}/status.json"
    stage.write_text(status_path, damage(stage.read_text(status_path), how))
    with pytest.raises(RecordError) as caught:
        _ = get_job(damaged.id).status
    message = str(caught.value)
    assert f"@{stage.name}/{status_path}" in message
    assert "cut short or changed by hand" in message
    assert "shoal job delete" in message
    # a listing that has not seen the job end reads its status: it is UNKNOWN, the others listed
    from shoal.jobs.listing import job_summaries

    listed = {s.name: s for s in job_summaries(limit=0)}
    assert listed[damaged.name].status in ("UNKNOWN", "DONE")  # DONE when an earlier listing kept it
    assert listed[other.name].status == "DONE"
    record = home / "jobs" / f"{damaged.name}.json"
    record.write_text(damage(record.read_text(), "half" if how == "half" else "empty"))
    with pytest.raises(RecordError, match=re.escape(f"The record of job {damaged.name!r}")):
        get_job(damaged.id)
    result = CliRunner().invoke(cli, ["job", "ls", "--limit", "0"])
    assert result.exit_code == 0, result.output
    assert other.name in result.output
    assert other.name in set(list_jobs(limit=0)["name"])
    record.unlink()  # the corpus compares every job record: leave none damaged


def test_a_job_whose_value_cannot_be_saved_says_so_and_what_to_do(home: Path) -> None:
    script = Path(shoal.workspace.workspace_dir("scripts")) / "returns_a_lock.py"
    script.write_text("import threading\n__return__ = threading.Lock()\n")
    from shoal.jobs import submit_file

    job = submit_file(str(script), POOL, stage_name=STAGE)
    assert job.wait(timeout=-1).value == "DONE", "wait(timeout=-1) waits without a limit"
    with pytest.raises(RuntimeError) as caught:
        job.result()
    message = str(caught.value)
    assert "its result could not be saved" in message
    assert "lock" in message
    assert "save the object to the stage" in message

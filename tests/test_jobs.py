"""Multi-node jobs on a real 3-node local compute pool.

One pool serves the whole module (starting Ray nodes costs seconds each). It is created by
another Python process, which exits: the pool outliving its creator is part of what is tested.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pool_helpers import listening_addresses, payload_process, pool_processes, run_python
from shoal.errors import JobCancelledError
from shoal.jobs import JobStatus, get_job, list_jobs, remote, submit_directory, submit_file
from waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "JOBS3"
STAGE = "payloads"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace with a 3-node pool, created by a process that has exited since."""
    home = tmp_path_factory.mktemp("jobs-home")
    run_python(f"import shoal; shoal.create_compute_pool({POOL!r}, min_nodes=3, max_nodes=3)", home)
    state = json.loads((home / "pools" / POOL / "state.json").read_text())
    yield home
    run_python(f"import shoal; shoal.drop_compute_pool({POOL!r})", home)
    assert pool_processes(state["pool_id"]) == [], "dropping the pool must leave nothing running"


@pytest.fixture(autouse=True)
def _use_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))


def test_pool_outlives_its_creator_and_listens_on_loopback_only(home: Path) -> None:
    import shoal

    info = shoal.describe_compute_pool(POOL)
    assert info["state"] == "ACTIVE"
    assert info["active_nodes"] == 3
    assert info["address"].startswith("127.0.0.1:")
    state = json.loads((home / "pools" / POOL / "state.json").read_text())
    pids = pool_processes(state["pool_id"])
    assert len(pids) >= 6, "3 raylets plus the head's processes"
    assert listening_addresses(pids) <= {"127.0.0.1", "::ffff:127.0.0.1"}


def spread_report(tasks: int) -> dict[str, Any]:
    import os

    import ray

    ray.init(address="auto")

    @ray.remote(num_cpus=0.1)
    def where() -> str:
        time.sleep(0.3)
        return str(ray.get_runtime_context().get_node_id())

    nodes = set(ray.get([where.options(scheduling_strategy="SPREAD").remote() for _ in range(tasks)]))
    return {
        "task_nodes": len(nodes),
        "ray_nodes": len([n for n in ray.nodes() if n["Alive"]]),
        "count": os.environ["SHOAL_INSTANCE_COUNT"],
        "reference_count": os.environ["SNOWFLAKE_JOBS_COUNT"],
        "job_nodes": sorted(os.environ["SHOAL_JOB_NODE_IDS"].split(",")),
        "seen": sorted(nodes),
    }


def test_three_instance_job_spreads_ray_tasks_over_three_nodes() -> None:
    job = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=120)(spread_report)(12)
    assert job.target_instances == 3
    assert job.min_instances == 3
    report = job.result(timeout=180)
    assert report["task_nodes"] == 3
    assert report["ray_nodes"] == 3
    assert report["count"] == "3"
    assert report["reference_count"] == "3"
    assert report["seen"] == report["job_nodes"]
    assert job.status == JobStatus.DONE
    assert job.status == "DONE"


class Forecast:
    """A custom result object: comes back with its attributes."""

    def __init__(self, store: int, values: list[float]) -> None:
        self.store = store
        self.values = values


def make_result(kind: str) -> Any:
    if kind == "dict":
        return {"rmse": 0.25, "params": {"depth": 4}, "tags": ["a", "b"]}
    if kind == "numpy":
        return np.arange(12, dtype=np.float32).reshape(3, 4)
    if kind == "frame":
        return pd.DataFrame({"store": [1, 2, 3], "units": [10.5, 12.0, 7.25]})
    if kind == "object":
        return Forecast(7, [1.0, 2.5])
    return None


def test_result_types_come_back_intact(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    kinds = ["none", "dict", "numpy", "frame", "object"]
    job_of = remote(POOL, stage_name=STAGE, instances_timeout=300)(make_result)
    with caplog.at_level(logging.INFO, logger="shoal"):
        jobs = {kind: job_of(kind) for kind in kinds}  # five jobs at once on three nodes: two must wait
        results = {kind: job.result(timeout=300) for kind, job in jobs.items()}
    submitted = [r.getMessage() for r in caplog.records if "submitted to pool" in r.getMessage()]
    assert sorted(m.split()[1] for m in submitted) == sorted(job.id for job in jobs.values())
    assert capsys.readouterr() == ("", ""), "the library logs; it prints nothing"
    assert results["none"] is None
    assert results["dict"] == {"rmse": 0.25, "params": {"depth": 4}, "tags": ["a", "b"]}
    np.testing.assert_array_equal(results["numpy"], np.arange(12, dtype=np.float32).reshape(3, 4))
    assert results["numpy"].dtype == np.float32
    pd.testing.assert_frame_equal(results["frame"], make_result("frame"))
    assert (results["object"].store, results["object"].values) == (7, [1.0, 2.5])
    assert type(results["object"]).__name__ == "Forecast"


def fail_deep(limit: int) -> None:
    def check(value: int) -> None:
        if value > limit:
            raise ValueError(f"value {value} above limit {limit}")

    check(limit + 1)


def test_failure_raises_runtime_error_from_the_original_exception() -> None:
    job = remote(POOL, stage_name=STAGE, instances_timeout=300)(fail_deep)(41)
    with pytest.raises(RuntimeError, match="Job execution failed with error") as caught:
        job.result(timeout=180)
    original = caught.value.__cause__
    assert isinstance(original, ValueError)
    assert str(original) == "value 42 above limit 41"
    assert "in check" in str(original.__cause__), "the job's traceback travels along"
    assert job.status == JobStatus.FAILED
    assert "Traceback" in job.get_logs()
    assert "ValueError: value 42 above limit 41" in job.get_logs()


def print_from_every_node(per_node: int) -> str:
    import os

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ray.init(address="auto")

    @ray.remote(num_cpus=0.1)
    def emit(task: int, index: int) -> None:
        from shoal.jobs import instance_id

        assert instance_id() == index, "a worker knows its instance from the job's environment"
        print(f"task-{task}-on-{index} first", flush=True)
        print(f"task-{task}-on-{index} second")

    @ray.remote(num_cpus=0.1)
    class Speaker:
        def say(self, index: int) -> None:
            print(f"actor-on-{index}")

    nodes = os.environ["SHOAL_JOB_NODE_IDS"].split(",")
    print("payload before the tasks", flush=True)
    pinned = [NodeAffinitySchedulingStrategy(node, soft=False) for node in nodes]
    ray.get(
        [
            emit.options(scheduling_strategy=pinned[index]).remote(index * per_node + k, index)
            for index in range(len(nodes))
            for k in range(per_node)
        ]
    )
    speakers = [Speaker.options(scheduling_strategy=pinned[i]).remote() for i in range(len(nodes))]  # type: ignore[attr-defined]
    ray.get([speaker.say.remote(i) for i, speaker in enumerate(speakers)])
    from shoal.jobs import instance_count, instance_id

    print("payload after the tasks", flush=True)
    return f"ok {instance_id()} of {instance_count()}"


def test_every_instance_log_holds_exactly_its_nodes_output_line_by_line() -> None:
    per_node = 3
    job = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=300)(print_from_every_node)(
        per_node
    )
    assert job.result(timeout=180) == "ok 0 of 3"
    for index in range(3):
        log = job.get_logs(instance_id=index, as_list=True)
        assert isinstance(log, list)
        marked = [line for line in log if line.startswith("(")]
        expected = sorted(
            [
                f"task-{index * per_node + k}-on-{index} {which}"
                for k in range(per_node)
                for which in ("first", "second")
            ]
            + [f"actor-on-{index}"]
        )
        assert sorted(line.split(") ", 1)[1] for line in marked) == expected, f"instance {index}: {log}"
        assert all(line.startswith(("(emit pid=", "(Speaker pid=")) for line in marked), marked
        payload_lines = [line for line in log if line.startswith("payload ")]
        if index == 0:
            assert payload_lines == ["payload before the tasks", "payload after the tasks"]
        else:
            assert payload_lines == [], "the payload's own output is instance 0's only"
            assert len(log) == len(marked), f"instance {index} holds its tasks' lines and nothing else: {log}"
    head = job.get_logs()
    assert "ML job started" not in head, "without verbose only the payload's output is shown"
    assert "ML job started" in job.get_logs(verbose=True)
    assert len(job.get_logs(limit=1, as_list=True)) == 1


def print_and_wait(release: str) -> str:
    import os

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from shoal.jobs import job_node_ids

    ray.init(address="auto")

    @ray.remote(num_cpus=0.1)
    def shout() -> None:
        print("task output while running", flush=True)

    strategy = NodeAffinitySchedulingStrategy(job_node_ids()[-1], soft=False)
    ray.get(shout.options(scheduling_strategy=strategy).remote())
    print("payload output while running", flush=True)
    deadline = time.time() + 120
    while not os.path.exists(release) and time.time() < deadline:
        time.sleep(0.05)
    return "released"


def test_a_running_jobs_logs_are_readable_on_every_instance_before_it_ends(tmp_path: Path) -> None:
    from click.testing import CliRunner

    release = tmp_path / "release"
    job = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=300)(print_and_wait)(
        str(release)
    )
    deadline = time.monotonic() + 120
    while not (
        "payload output while running" in job.get_logs()
        and "task output while running" in job.get_logs(instance_id=2)
    ):
        assert time.monotonic() < deadline, f"the logs never showed the running job's output: {job.details()}"
        assert not job.status.is_terminal, f"the job ended before its output was seen: {job.details()}"
        time.sleep(0.1)
    assert job.status == JobStatus.RUNNING, "seen while the job runs, not after"
    from shoal.cli import cli

    def release_soon() -> None:
        time.sleep(1.0)
        release.write_text("go")

    follower = threading.Thread(target=release_soon)
    follower.start()
    followed = CliRunner().invoke(cli, ["job", "logs", job.id, "--follow"])
    follower.join()
    assert followed.exit_code == 0, followed.output
    assert followed.output.count("payload output while running") == 1, followed.output
    assert followed.output.strip() == job.get_logs().strip(), "the same content as without --follow"
    assert "ML job finished" not in followed.output, "the banners are hidden in both modes"
    verbose = CliRunner().invoke(cli, ["job", "logs", job.id, "--follow", "--verbose"])
    assert "ML job finished" in verbose.output, "--verbose shows everything, followed too"
    assert job.result(timeout=60) == "released"


def ended(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_cancel_during_the_warm_start_stops_every_process_of_the_job() -> None:
    from shoal.processes import marked_processes
    from shoal.stages import resolve_location

    for pause in (0.0, 0.3):  # in the queue, and as the warm interpreter takes the job
        job = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=300)(sleep_forever)(
            "never"
        )
        time.sleep(pause)  # not a synchronisation: the two moments a cancel may come at
        job.cancel()
        assert job.wait(timeout=60) == JobStatus.CANCELLED, job.details()
        # a payload the agent started (it records its pid) has ended; one cancelled before it
        # started has no pid. The job's Ray workers (checked after) are checked in both cases.
        stage, job_dir = resolve_location(job.stage_path)
        pid_file = f"{job_dir}/system/payload_pid"
        if stage.exists(pid_file):
            pid = int(stage.read_text(pid_file))
            wait_until(lambda pid=pid: ended(pid), f"payload {pid} of cancelled job {job.id} to end", 10)
        # the job's Ray workers carry its id in their environment: none is left
        wait_until(
            lambda job=job: not marked_processes(f"SHOAL_JOB_ID={job.id}"),
            f"every process of cancelled job {job.id} to end",
            10,
            seen=lambda job=job: sorted(marked_processes(f"SHOAL_JOB_ID={job.id}")),
        )
    again = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=60)(spread_report)(6)
    assert again.result(timeout=120)["task_nodes"] == 3, "the cancelled jobs released all three nodes"


def sleep_forever(note: str) -> None:
    print(note, flush=True)
    while True:
        time.sleep(0.2)


def test_cancel_a_running_job_and_its_nodes_come_back() -> None:
    job = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=300)(sleep_forever)(
        "going to sleep"
    )
    deadline = time.monotonic() + 120
    while job.status != JobStatus.RUNNING or "going to sleep" not in job.get_logs():
        assert time.monotonic() < deadline, f"job never ran: {job.details()}"
        time.sleep(0.3)
    job.cancel()
    assert job.wait(timeout=30) == JobStatus.CANCELLED, "a cancel ends a running job within 30 s"
    with pytest.raises(JobCancelledError, match=f"Job {job.id} was cancelled: it has no result"):
        job.result(timeout=10)
    assert job.details()["exit_code"] != -signal.SIGKILL, "a payload that obeys SIGTERM ends by it"
    assert "going to sleep" in job.get_logs()
    again = remote(POOL, stage_name=STAGE, target_instances=3, instances_timeout=60)(spread_report)(6)
    assert again.result(timeout=120)["task_nodes"] == 3, "the cancelled job released all three nodes"


def ignore_sigterm(note: str) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(note, flush=True)
    while True:
        time.sleep(0.2)


def test_cancel_kills_a_payload_that_ignores_sigterm() -> None:
    job = remote(POOL, stage_name=STAGE, instances_timeout=120)(ignore_sigterm)("ignoring SIGTERM")
    wait_until(
        lambda: "ignoring SIGTERM" in job.get_logs(),
        "the payload to say it ignores SIGTERM",
        120,
        seen=job.details,
    )
    payload = payload_process(job.id)
    job.cancel()
    assert job.wait(timeout=60) == JobStatus.CANCELLED, job.details()
    assert job.details()["exit_code"] == -signal.SIGKILL, "SIGTERM was ignored, so the grace ended in SIGKILL"
    wait_until(lambda: ended(payload.pid), f"payload {payload.pid} to be gone", 10)


def test_min_instances_below_target_when_only_that_many_nodes_come() -> None:
    blocker = remote(POOL, stage_name=STAGE, instances_timeout=120)(sleep_forever)("blocking one node")
    wait_until(
        lambda: blocker.status == JobStatus.RUNNING, "the blocking job to run", 120, seen=blocker.details
    )
    try:
        job = remote(POOL, stage_name=STAGE, target_instances=3, min_instances=2, instances_timeout=20)(
            spread_report
        )(8)
        report = job.result(timeout=120)
        assert report["count"] == "2"
        assert job.details()["instances"] == 2
        assert len(report["job_nodes"]) == 2
        assert set(report["job_nodes"]).isdisjoint(blocker.details()["node_ids"]), (
            "a node serves one job at a time"
        )
    finally:
        blocker.cancel()
        blocker.wait(timeout=60)


def test_rendezvous_timeout_says_how_many_nodes_came(monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = remote(POOL, stage_name=STAGE, target_instances=2, instances_timeout=120)(sleep_forever)(
        "blocking"
    )
    wait_until(
        lambda: blocker.status == JobStatus.RUNNING, "the blocking job to run", 120, seen=blocker.details
    )
    try:
        job = remote(POOL, stage_name=STAGE, target_instances=2, instances_timeout=3)(make_result)("dict")
        assert job.wait(timeout=60) == JobStatus.FAILED
        message = job.details()["message"]
        assert "got 1 of the 2 node(s) it needs" in message
        assert "2 of them reserved by other jobs" in message
        assert "instances_timeout" in message
        with pytest.raises(RuntimeError, match="got 1 of the 2 node"):
            job.result()
        monkeypatch.setenv("SHOAL_INSTANCES_TIMEOUT", "3")  # the default when instances_timeout is not given
        by_env = remote(POOL, stage_name=STAGE, target_instances=2)(make_result)("dict")
        assert by_env.wait(timeout=60) == JobStatus.FAILED, "SHOAL_INSTANCES_TIMEOUT=3, not the 720 s default"
        assert "got 1 of the 2 node(s) it needs" in by_env.details()["message"]
    finally:
        blocker.cancel()
        blocker.wait(timeout=60)


@pytest.mark.parametrize(
    ("target", "minimum", "match"),
    [
        (0, None, "target_instances must be a positive integer"),
        (-2, None, "target_instances must be a positive integer"),
        (2, 0, "min_instances must be a positive integer"),
        (2, 3, r"min_instances \(3\) must not exceed target_instances \(2\)"),
        (5, 4, r"min_instances \(4\) exceeds the max_nodes \(3\)"),
    ],
)
def test_bad_instance_counts_are_value_errors_before_anything_is_uploaded(
    target: int, minimum: int | None, match: str, tmp_path: Path
) -> None:
    import shoal

    script = tmp_path / "noop.py"
    script.write_text("__return__ = 1\n")
    stage = shoal.create_stage(STAGE, exist_ok=True)
    before = stage.list()
    jobs_before = len(list_jobs(limit=0))
    with pytest.raises(ValueError, match=match):
        submit_file(script, POOL, stage_name=STAGE, target_instances=target, min_instances=minimum)
    with pytest.raises(ValueError, match=match):
        remote(POOL, stage_name=STAGE, target_instances=target, min_instances=minimum)
    assert stage.list() == before
    assert len(list_jobs(limit=0)) == jobs_before


def test_file_and_directory_payloads_with_args_and_imports(tmp_path: Path) -> None:
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "scaling.py").write_text("def triple(x):\n    return 3 * x\n")
    script = tmp_path / "compute.py"
    script.write_text(
        "import sys\nfrom scaling import triple\n"
        "__return__ = {'args': sys.argv[1:], 'value': triple(int(sys.argv[1]))}\n"
    )
    job = submit_file(
        script, POOL, stage_name=STAGE, args=["5", "--flag"], imports=[(helpers / "scaling.py", "scaling")]
    )
    assert job.result(timeout=180) == {"args": ["5", "--flag"], "value": 15}

    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "pkg" / "__init__.py").write_text("NAME = 'pkg'\n")
    (project / "main.py").write_text(
        "import os, pkg\nprint('env', os.environ['COLOR'])\n__return__ = pkg.NAME\n"
    )
    (project / "__pycache__").mkdir()
    (project / "__pycache__" / "junk.pyc").write_bytes(b"x")
    job = submit_directory(project, POOL, entrypoint="main.py", stage_name=STAGE, env_vars={"COLOR": "teal"})
    assert job.result(timeout=180) == "pkg"
    assert "env teal" in job.get_logs()
    import shoal

    uploaded = shoal.get_stage(STAGE).list(f"{job.name}/app")
    assert sorted(uploaded) == [f"{job.name}/app/main.py", f"{job.name}/app/pkg/__init__.py"]


PLUGIN_SOURCE = """
import os

from shoal import hookimpl
from shoal.contributions import PartitionFunctionSpec

if os.environ.get("SHOAL_POOL_ID") and os.environ.get("NEEDS_WORKSTATION"):
    raise ImportError("this plugin needs the licence server, which only the workstation reaches")


def double(connector, context):
    return [2 * x for x in connector]


@hookimpl
def shoal_partition_functions():
    yield PartitionFunctionSpec(name="double", function=double)
"""


@pytest.fixture
def driver_only_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A plugin registered by hand from a folder only this process has on its path."""
    import importlib

    from plugin_helpers import forget_module
    from shoal.plugin_manager import register_plugin

    folder = tmp_path / "workstation"
    folder.mkdir()
    (folder / "workstation_plugin.py").write_text(PLUGIN_SOURCE)
    monkeypatch.syspath_prepend(str(folder))
    module = importlib.import_module("workstation_plugin")
    register_plugin(module)
    yield module
    forget_module("workstation_plugin")


def plugin_names() -> list[str]:
    from shoal import hooks

    return sorted(hooks.collect("partition_functions"))


def train_nothing(data: Any, context: Any) -> None:
    del data, context


def test_a_plugin_the_nodes_cannot_import_is_refused_before_anything_starts(
    driver_only_plugin: Any, tmp_path: Path
) -> None:
    import shoal
    from shoal.errors import PluginError
    from shoal.mmt import ManyModelTraining

    stage = shoal.create_stage(STAGE, exist_ok=True)
    before = stage.list()
    jobs_before = len(list_jobs(limit=0))
    with pytest.raises(PluginError) as caught:
        remote(POOL, stage_name=STAGE)(plugin_names)()
    message = str(caught.value)
    assert f"The nodes of compute pool {POOL} cannot import the plugins registered in this process" in message
    where = driver_only_plugin.__file__
    assert f"plugin 'workstation_plugin' comes from module workstation_plugin ({where})" in message
    assert "put its folder on PYTHONPATH before the pool starts" in message
    assert f"`shoal pool stop {POOL}`" in message, "the pool is running: say how it picks up the path"
    assert "imports=[module]" in message
    with pytest.raises(PluginError, match="comes from module workstation_plugin"):
        ManyModelTraining(train_nothing, "plugin_models", compute_pool=POOL).run(
            partition_by="K", dataframe=pd.DataFrame({"K": [1, 2], "X": [0.0, 1.0]}), run_id="r1"
        )
    assert stage.list() == before
    assert len(list_jobs(limit=0)) == jobs_before
    assert "PLUGIN_MODELS" not in [s.name for s in shoal.list_stages()], "nothing is created for the run"


def test_a_plugin_shipped_with_the_job_reaches_its_nodes(driver_only_plugin: Any) -> None:
    job = remote(POOL, stage_name=STAGE, imports=[driver_only_plugin])(plugin_names)()
    assert "double" in job.result(timeout=180)


def test_a_plugin_that_fails_on_the_nodes_fails_the_job_with_the_cause(
    driver_only_plugin: Any,
) -> None:
    from shoal.errors import PluginError

    # the job's nodes see the variable, and the module refuses to load there
    job = remote(POOL, stage_name=STAGE, imports=[driver_only_plugin], env_vars={"NEEDS_WORKSTATION": "1"})(
        plugin_names
    )()
    assert job.wait(timeout=180) == JobStatus.FAILED
    message = job.details()["message"]
    assert message.startswith(
        "the payload raised PluginError (job.result() re-raises it): The plugins on node"
    ), message
    assert "workstation_plugin" in message
    assert "ImportError: this plugin needs the licence server" in message
    with pytest.raises(RuntimeError) as caught:
        job.result(timeout=30)
    assert isinstance(caught.value.__cause__, PluginError)
    assert "licence server" in job.get_logs()


def test_job_is_listed_and_read_from_a_second_process(home: Path) -> None:
    job = remote(POOL, stage_name=STAGE, instances_timeout=300)(make_result)("dict")
    job.wait(timeout=180)
    out = run_python(
        "import json\n"
        "from shoal.jobs import list_jobs, get_job\n"
        "frame = list_jobs(limit=0)\n"
        f"row = frame[frame['name'] == {job.name!r}].iloc[0]\n"
        f"print(json.dumps({{'columns': list(frame.columns), 'status': row['status'],"
        f" 'pool': row['compute_pool'], 'result': get_job({job.id!r}).result()}}))\n",
        home,
    )
    seen = json.loads(out.strip().splitlines()[-1])
    assert seen["columns"] == [
        "name",
        "status",
        "message",
        "database_name",
        "schema_name",
        "owner",
        "compute_pool",
        "target_instances",
        "created_time",
        "completed_time",
    ]
    assert seen["status"] == "DONE"
    assert seen["pool"] == POOL
    assert seen["result"] == {"rmse": 0.25, "params": {"depth": 4}, "tags": ["a", "b"]}


def test_job_keeps_running_after_its_client_exits(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "slow.py"
    script.write_text("import time\ntime.sleep(3)\n__return__ = 42\n")
    out = run_python(
        "from shoal.jobs import submit_file\n"
        f"print(submit_file({str(script)!r}, {POOL!r}, stage_name={STAGE!r}).id)\n",
        home,
    )
    job_id = out.strip().splitlines()[-1]
    job = get_job(job_id)
    assert job.result(timeout=180) == 42


def use_session(session: Any, rows: int) -> int:
    frame = session.create_dataframe([[i, i * i] for i in range(rows)], schema=["a", "b"])
    return int(frame.filter(frame["b"] > 3).count())


def test_snowpark_session_argument_arrives_live() -> None:
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    job = remote(POOL, stage_name=STAGE, instances_timeout=300)(use_session)(session, 6)
    assert job.result(timeout=240) == 4


SESSION_SCRIPT = """
import json, os
from shoal.data.snowpark_service import embedded_session, stop_service
from shoal.dpf import DPF
from shoal.jobs import remote, submit_file

setup = embedded_session()
setup.sql("CREATE SCHEMA IF NOT EXISTS SHOAL.JOBS_SESSION").collect()
session = embedded_session(schema="JOBS_SESSION")  # the job must see this schema's tables
session.sql(
    "CREATE OR REPLACE TABLE SALES AS SELECT seq4() % 3 AS STORE, seq4() AS UNITS "
    "FROM TABLE(GENERATOR(ROWCOUNT => 12))"
).collect()
session.sql("CREATE OR REPLACE TABLE SEEN (WHERE_FROM VARCHAR, N BIGINT)").collect()
setup.close()


def counts_everywhere():
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as Pin
    from snowflake.snowpark.context import get_active_session

    ray.init(address="auto")

    @ray.remote(num_cpus=0.1)
    def on_node():
        from snowflake.snowpark.context import get_active_session

        return get_active_session().table("SALES").count()

    nodes = os.environ["SHOAL_JOB_NODE_IDS"].split(",")
    pinned = [on_node.options(scheduling_strategy=Pin(n, soft=False)).remote() for n in nodes]
    get_active_session().sql("INSERT INTO SEEN VALUES ('job', 1)").collect()
    return {"head": get_active_session().table("SALES").count(), "nodes": ray.get(pinned)}


def seen_by_partition(data_connector, context):
    from snowflake.snowpark.context import get_active_session

    rows = len(data_connector.to_pandas())
    get_active_session().sql("INSERT INTO SEEN VALUES (?, ?)", params=[context.partition_id, rows]).collect()


folder = os.environ["SCRIPT_DIR"]
with open(os.path.join(folder, "count.py"), "w") as handle:
    handle.write(
        "from snowflake.snowpark import Session\\n"
        "__return__ = Session.builder.getOrCreate().table('SALES').count()\\n"
    )
try:
    job = remote(POOL, stage_name=STAGE, session=session, target_instances=3)(counts_everywhere)()
    in_job = job.result(timeout=240)
    from_file = submit_file(
        os.path.join(folder, "count.py"), POOL, stage_name=STAGE, session=session
    ).result(timeout=240)
    run = DPF(seen_by_partition, STAGE, compute_pool=POOL).run(
        partition_by="STORE", snowpark_dataframe=session.table("SALES"), run_id="session_lookup"
    )
    run.wait(timeout=240)
    seen = sorted((r["WHERE_FROM"], r["N"]) for r in session.table("SEEN").collect())
    print("RESULT " + json.dumps({"in_job": in_job, "from_file": from_file, "seen": seen,
                                  "dpf": str(run.status)}))
finally:
    stop_service()
"""


def test_every_job_finds_the_submitters_session_on_every_node(home: Path, tmp_path: Path) -> None:
    """shoal's own API, no compatibility layer: ``get_active_session()`` in a job's payload, in
    its Ray tasks on each of 3 nodes, in a file job and in DPF partitions sees the submitter's
    schema (issue 29, item 5)."""
    code = f"POOL, STAGE = {POOL!r}, {STAGE!r}\n" + SESSION_SCRIPT
    out = run_python(code, home, timeout=600, extra_env={"SCRIPT_DIR": str(tmp_path)})
    result = json.loads(out.split("RESULT ", 1)[1])
    assert result["in_job"] == {"head": 12, "nodes": [12, 12, 12]}
    assert result["from_file"] == 12
    assert result["dpf"] == "SUCCESS"
    assert result["seen"] == [["0", 4], ["1", 4], ["2", 4], ["job", 1]]


def use_tinydb() -> dict[str, Any]:
    import os

    import ray
    import tinydb  # only in the job's pip_requirements

    ray.init(address="auto")

    @ray.remote(num_cpus=0.1)
    def version_on_a_worker() -> str:
        import tinydb as on_worker

        return str(on_worker.__version__)

    nodes = os.environ["SHOAL_JOB_NODE_IDS"].split(",")
    strategy = ray.util.scheduling_strategies.NodeAffinitySchedulingStrategy(nodes[-1], soft=False)
    return {
        "payload": tinydb.__version__,
        "worker": ray.get(version_on_a_worker.options(scheduling_strategy=strategy).remote()),
    }


def test_pip_requirements_are_installed_once_and_reach_the_workers(tmp_path: Path) -> None:
    import importlib.util

    assert importlib.util.find_spec("tinydb") is None, "the test needs a package the environment lacks"
    cache = {"SHOAL_PIP_CACHE": str(tmp_path / "pip-cache")}  # this test's own cache
    options = {
        "stage_name": STAGE,
        "target_instances": 2,
        "pip_requirements": ["tinydb==4.8.2"],
        "env_vars": cache,
    }
    first = remote(POOL, **options)(use_tinydb)()
    assert first.result(timeout=600) == {"payload": "4.8.2", "worker": "4.8.2"}
    assert "pip_requirements installed in" in first.get_logs(verbose=True)
    second = remote(POOL, **options)(use_tinydb)()
    assert second.result(timeout=300) == {"payload": "4.8.2", "worker": "4.8.2"}
    assert "pip_requirements found cached in" in second.get_logs(verbose=True)
    assert importlib.util.find_spec("tinydb") is None, "nothing was installed into the pool's environment"
    bad = remote(POOL, stage_name=STAGE, pip_requirements=["shoal-no-such-package==0.0.1"], env_vars=cache)(
        use_tinydb
    )()
    assert bad.wait(timeout=600) == JobStatus.FAILED
    with pytest.raises(
        RuntimeError, match=r"installing pip_requirements \['shoal-no-such-package==0.0.1'\] failed"
    ):
        bad.result()
    with pytest.raises(TypeError, match="pip_requirements must be a list of requirement strings"):
        remote(POOL, stage_name=STAGE, pip_requirements="tinydb")(use_tinydb)()

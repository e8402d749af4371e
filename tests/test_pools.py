"""Compute pools: validation, on-demand scale-up, idle scale-down, clean stop, the ``ray``
backend on an existing cluster, lifecycle hooks around a job, and the pool/job CLI."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from click.testing import CliRunner

import shoal
from plugin_helpers import make_distribution
from pool_helpers import pool_processes
from shoal.cli import cli
from shoal.errors import ConfigError
from shoal.jobs import JobStatus, remote, submit_file
from shoal.pools.api import dashboard_url
from shoal.pools.records import PoolExistsError, PoolNotFoundError

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "ELASTIC"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pools-home")


@pytest.fixture(autouse=True)
def _use_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))


@pytest.fixture(scope="module")
def elastic(home: Path) -> Iterator[str]:
    """A pool of 1 to 2 nodes whose idle workers stop after 3 s."""
    os.environ["SHOAL_HOME"] = str(home)
    shoal.create_compute_pool(POOL, min_nodes=1, max_nodes=2, idle_timeout_s=3)
    yield POOL
    os.environ["SHOAL_HOME"] = str(home)
    state = json.loads((home / "pools" / POOL / "state.json").read_text())
    shoal.drop_compute_pool(POOL)
    assert pool_processes(state["pool_id"]) == []


def test_bad_pool_definitions_are_refused_before_anything_starts(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"max_nodes must be at least 1, got 0"):
        shoal.create_compute_pool("BAD", max_nodes=0)
    with pytest.raises(ConfigError, match=r"min_nodes \(3\) must not exceed max_nodes \(2\)"):
        shoal.create_compute_pool("BAD", min_nodes=3, max_nodes=2)
    with pytest.raises(ConfigError, match=r"Unknown instance family 'CPU_X64_XXL'.*CPU_X64_XS"):
        shoal.create_compute_pool("BAD", max_nodes=1, instance_family="CPU_X64_XXL")
    with pytest.raises(ConfigError, match=r"Unknown compute pool backend 'kubernetes'.*local, ray"):
        shoal.create_compute_pool("BAD", max_nodes=1, backend="kubernetes")
    with pytest.raises(ConfigError, match=r"Unknown option\(s\) for a local compute pool: colour"):
        shoal.create_compute_pool("BAD", max_nodes=1, colour="red")
    with pytest.raises(ConfigError, match=r"needs address="):
        shoal.create_compute_pool("BAD", max_nodes=1, backend="ray")
    with pytest.raises(PoolNotFoundError, match=r"Compute pool 'BAD' does not exist"):
        shoal.describe_compute_pool("bad")
    assert not (home / "pools" / "BAD" / "pool.json").exists()


def test_pool_stop_leaves_nothing_running(
    home: Path, pools_made: list[str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pools_made.append("SHORT")
    shoal.create_compute_pool("SHORT", max_nodes=1)
    script = tmp_path / "sleeps.py"
    script.write_text("import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    running = submit_file(script, "SHORT", stage_name="jobs")
    deadline = time.monotonic() + 120
    while running.status != JobStatus.RUNNING:
        assert time.monotonic() < deadline, f"the job did not start: {running.details()}"
        time.sleep(0.2)
    queued = submit_file(script, "SHORT", stage_name="jobs")  # the pool's one node is taken
    state = json.loads((home / "pools" / "SHORT" / "state.json").read_text())
    assert pool_processes(state["pool_id"])
    with pytest.raises(PoolExistsError, match="exists already"):
        shoal.create_compute_pool("short", max_nodes=1)
    digest = hashlib.sha1(state["pool_id"].encode()).hexdigest()[:10]
    temp_root = Path("/tmp") / f"shoal-{os.getuid()}" / digest
    left_by_a_killed_agent = temp_root / "agents" / "shoal-job-x-0-abc"
    left_by_a_killed_agent.mkdir(parents=True)
    (left_by_a_killed_agent / "spec.json").write_text("{}")
    with caplog.at_level(logging.INFO, logger="shoal.pools.api"):
        result = CliRunner().invoke(cli, ["pool", "stop", "SHORT", "--force"], catch_exceptions=False)
    assert result.exit_code == 0
    for job, was in ((running, "RUNNING"), (queued, "PENDING")):
        assert job.status == JobStatus.INTERNAL_ERROR, job.details()
        assert job.details()["message"] == (
            f"compute pool SHORT was stopped while the job was {was}; submit it again"
        ), "not the payload's own failure, nor a cancel"
    ended = [r.getMessage() for r in caplog.records if "its service ended jobs" in r.getMessage()]
    assert ended, "each job's lifecycle wrote its end, not the stopping driver"
    assert running.name in ended[0]
    assert queued.name in ended[0]
    deadline = time.monotonic() + 10
    while pool_processes(state["pool_id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pool_processes(state["pool_id"]) == []
    assert not temp_root.exists(), "the pool's temporary folder (its jobs' agent folders) outlived it"
    assert shoal.describe_compute_pool("SHORT")["state"] == "SUSPENDED"
    shoal.drop_compute_pool("SHORT")
    assert [p["name"] for p in shoal.list_compute_pools()].count("SHORT") == 0


def raylet_children(state: dict[str, Any]) -> dict[str, list[tuple[int, str]]]:
    """For every node of a local pool's state: its raylet's child processes (pid, command line)."""
    children = {}
    for index, node in state["nodes"].items():
        raylet = psutil.Process(node["raylet_pids"][0])
        children[index] = [(child.pid, " ".join(child.cmdline())) for child in raylet.children()]
    return children


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_pool_without_the_dashboard_runs_a_stand_in_for_its_agent(
    home: Path, pools_made: list[str]
) -> None:
    pools_made.append("NOAGENT")
    shoal.create_compute_pool("NOAGENT", min_nodes=2, max_nodes=2)
    state = json.loads((home / "pools" / "NOAGENT" / "state.json").read_text())
    children = raylet_children(state)
    assert sorted(children) == ["0", "1"]
    stand_ins = {}
    for index, processes in children.items():
        commands = [command for _, command in processes]
        assert not any("dashboard/agent.py" in command for command in commands), commands
        assert any(
            "runtime_env/agent/main.py" in command or "RuntimeEnvAgent" in command for command in commands
        )
        (stand_ins[index],) = [pid for pid, command in processes if command.endswith("agent_stand_in.py")]
    job = remote("NOAGENT", stage_name="jobs", target_instances=2)(count_instances)()
    assert job.result(timeout=120) == 2  # work runs on both nodes, with a runtime env
    os.kill(state["nodes"]["1"]["raylet_pids"][0], signal.SIGKILL)
    deadline = time.monotonic() + 15
    while not gone(stand_ins["1"]):
        assert time.monotonic() < deadline, "the stand-in outlived its raylet"
        time.sleep(0.2)
    assert not gone(stand_ins["0"])
    shoal.drop_compute_pool("NOAGENT")
    assert pool_processes(state["pool_id"]) == []


def test_a_pool_with_the_dashboard_runs_ray_dashboard_and_agent(home: Path) -> None:
    shoal.create_compute_pool("DASH", max_nodes=1, include_dashboard=True)
    try:
        state = json.loads((home / "pools" / "DASH" / "state.json").read_text())
        commands = [command for _, command in raylet_children(state)["0"]]
        assert any("dashboard/agent.py" in command or "DashboardAgent" in command for command in commands)
        assert not any("agent_stand_in" in command for command in commands), commands
        url = dashboard_url("DASH")
        assert url is not None
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/api/version", timeout=30) as response:
            assert json.loads(response.read())["ray_version"]
    finally:
        shoal.drop_compute_pool("DASH")


def count_instances() -> int:
    import os

    return int(os.environ["SHOAL_INSTANCE_COUNT"])


def test_nodes_start_on_demand_and_idle_ones_stop(elastic: str) -> None:
    assert shoal.describe_compute_pool(elastic)["active_nodes"] == 1
    job = remote(elastic, stage_name="jobs", target_instances=2, instances_timeout=120)(count_instances)()
    assert job.result(timeout=180) == 2
    deadline = time.monotonic() + 60
    while shoal.describe_compute_pool(elastic)["active_nodes"] != 1:
        assert time.monotonic() < deadline, "the idle worker node was not stopped"
        time.sleep(0.5)
    hold_until = time.monotonic() + 2 * 3 + 1  # two more idle periods of 3 s: the head stays
    while time.monotonic() < hold_until:
        assert shoal.describe_compute_pool(elastic)["active_nodes"] == 1, "never below min_nodes"
        time.sleep(0.5)


def test_ray_backend_runs_jobs_on_an_existing_cluster(elastic: str) -> None:
    info = shoal.describe_compute_pool(elastic)
    shoal.create_compute_pool(
        "EXISTING",
        backend="ray",
        max_nodes=2,
        address=info["address"],
        node_resource=info["node_resource"],
        shares_filesystem=True,
    )
    try:
        listed = {p["name"]: p for p in shoal.list_compute_pools()}
        assert listed["EXISTING"]["backend"] == "ray"
        assert listed["EXISTING"]["state"] == "ACTIVE"
        job = remote("EXISTING", stage_name="jobs", instances_timeout=120)(count_instances)()
        assert job.result(timeout=180) == 1
    finally:
        shoal.drop_compute_pool("EXISTING")
    assert shoal.describe_compute_pool(elastic)["state"] == "ACTIVE", (
        "dropping a ray pool never stops the cluster"
    )


LIFECYCLE_PLUGIN = """
import json, os
from shoal import hookimpl

def _record(event, **fields):
    with open(os.environ["LIFECYCLE_LOG"], "a") as handle:
        handle.write(json.dumps({"event": event, **fields}) + "\\n")

@hookimpl
def shoal_before_job(job):
    _record("before", name=job.name, target=job.target_instances)

@hookimpl
def shoal_on_job_error(job, error):
    _record("error", name=job.name, error=repr(error))

@hookimpl
def shoal_after_job(job, status):
    _record("after", name=job.name, status=status)
"""


def test_job_lifecycle_hooks_run_on_the_head_of_the_job(
    elastic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = make_distribution(
        tmp_path / "site",
        "job-observer",
        "1.0",
        entry_point="observer",
        module="job_observer",
        source=LIFECYCLE_PLUGIN,
    )
    monkeypatch.syspath_prepend(str(site))
    shoal.plugin_manager.set_plugin_manager(None)
    log = tmp_path / "lifecycle.jsonl"
    env = {"PYTHONPATH": str(site), "LIFECYCLE_LOG": str(log)}
    good = tmp_path / "good.py"
    good.write_text("__return__ = 'fine'\n")
    bad = tmp_path / "bad.py"
    bad.write_text("raise KeyError('missing column')\n")
    ok = submit_file(good, elastic, stage_name="jobs", env_vars=env)
    assert ok.result(timeout=180) == "fine"
    failed = submit_file(bad, elastic, stage_name="jobs", env_vars=env)
    assert failed.wait(timeout=180) == JobStatus.FAILED
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert events == [
        {"event": "before", "name": ok.name, "target": 1},
        {"event": "after", "name": ok.name, "status": "DONE"},
        {"event": "before", "name": failed.name, "target": 1},
        {"event": "error", "name": failed.name, "error": "KeyError('missing column')"},
        {"event": "after", "name": failed.name, "status": "FAILED"},
    ]


def test_pool_and_job_cli(elastic: str, tmp_path: Path) -> None:
    runner = CliRunner()
    script = tmp_path / "cli_job.py"
    script.write_text("import sys\nprint('cli says', sys.argv[1:])\n__return__ = {'n': len(sys.argv) - 1}\n")
    result = runner.invoke(cli, ["pool", "ls", "--json"], catch_exceptions=False)
    assert elastic in {p["name"] for p in json.loads(result.stdout)}
    result = runner.invoke(
        cli,
        [
            "job",
            "submit",
            str(script),
            "--pool",
            elastic,
            "--stage-name",
            "jobs",
            "--wait",
            "--json",
            "--",
            "a",
            "b",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    submitted = json.loads(result.stdout)
    job_id = submitted["id"]
    assert submitted == {"id": job_id, "status": "DONE", "result": {"n": 2}}
    assert f"submitted {job_id}" in result.stderr, "progress goes to stderr"
    status = json.loads(
        runner.invoke(cli, ["job", "status", job_id, "--json"], catch_exceptions=False).stdout
    )
    assert (status["id"], status["status"]) == (job_id, "DONE")
    assert status["created_time"].endswith("Z"), "times are ISO-8601 UTC"
    logs = runner.invoke(cli, ["job", "logs", job_id], catch_exceptions=False).output
    assert "cli says ['a', 'b']" in logs
    listed = json.loads(runner.invoke(cli, ["job", "ls", "--json"], catch_exceptions=False).stdout)
    row = next(row for row in listed if row["id"] == job_id)
    assert (row["status"], row["compute_pool"]) == ("DONE", elastic)
    assert row["completed_time"].endswith("Z")
    table = runner.invoke(cli, ["job", "ls"], catch_exceptions=False).stdout.splitlines()
    assert table[0].split() == [
        "id",
        "status",
        "compute_pool",
        "target_instances",
        "created_time",
        "completed_time",
    ]
    assert any(line.split()[:3] == [job_id, "DONE", elastic] for line in table[1:])
    assert runner.invoke(cli, ["job", "result", job_id], catch_exceptions=False).output.strip() == '{"n": 2}'
    assert runner.invoke(cli, ["job", "delete", job_id], catch_exceptions=False).exit_code == 0
    assert job_id not in runner.invoke(cli, ["job", "ls", "--json"], catch_exceptions=False).output


CLI_PARTITION_MODULE = """
def count_rows(data, context):
    context.upload_to_stage(len(data.to_pandas()), "rows.pkl")
"""


def test_the_cli_options_that_shape_a_job_and_a_run(
    elastic: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text(
        "import os\n__return__ = {'greeting': os.environ['GREETING'], "
        "'count': os.environ['SHOAL_INSTANCE_COUNT']}\n"
    )
    submitted = runner.invoke(
        cli,
        [
            "job", "submit", str(project), "--entrypoint", "src/main.py", "--pool", elastic,
            "--stage-name", "jobs", "--instances", "2", "--min-instances", "1", "--env", "GREETING=hi",
            "--wait",
        ],
    )  # fmt: skip
    assert submitted.exit_code == 0, submitted.output
    job_id = next(ln for ln in submitted.stderr.splitlines() if ln.startswith("submitted ")).split()[1]
    result = json.loads(submitted.stdout)
    assert result["greeting"] == "hi"
    assert result["count"] in ("1", "2"), "--min-instances 1 lets it start with one node"
    assert runner.invoke(cli, ["job", "logs", job_id, "--instance", "1"]).exit_code == 0
    refused = runner.invoke(cli, ["job", "logs", job_id, "--instance", "5"])
    assert refused.exit_code == 1
    assert "instance_id 5 is not one of them" in str(refused.exception)

    # dpf run from a query and from stage files, then its status
    (tmp_path / "cli_partitions.py").write_text(CLI_PARTITION_MODULE)
    monkeypatch.chdir(tmp_path)
    common = ["--stage-name", "CLI_RUNS", "--pool", elastic]
    by_sql = runner.invoke(
        cli,
        [
            "dpf", "run", "cli_partitions:count_rows", "--run-id", "by_sql", "--partition-by", "K",
            "--sql", "SELECT * FROM (VALUES ('a', 1), ('a', 2), ('b', 3)) AS t(K, V)", *common,
        ],
    )  # fmt: skip
    assert by_sql.exit_code == 0, by_sql.output
    assert "run by_sql: SUCCESS" in by_sql.output
    shoal.create_stage("CLI_FILES", exist_ok=True)
    files = shoal.get_stage("CLI_FILES")
    files.write_text("in/one.csv", "x\n1\n2\n")
    files.write_text("in/two.csv", "x\n3\n")
    by_stage = runner.invoke(
        cli,
        [
            "dpf", "run", "cli_partitions:count_rows", "--run-id", "by_stage", "--stage", "@CLI_FILES/in",
            "--pattern", "*.csv", *common,
        ],
    )  # fmt: skip
    assert by_stage.exit_code == 0, by_stage.output
    assert "run by_stage: SUCCESS" in by_stage.output
    watched = runner.invoke(cli, ["dpf", "status", "by_sql", "--stage-name", "CLI_RUNS", "--watch", "--json"])
    assert watched.exit_code == 0, watched.output
    last = json.loads(watched.stdout.strip().splitlines()[-1])
    assert last["status"] == "SUCCESS"
    assert last["partitions"]["DONE"] == 2

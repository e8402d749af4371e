"""A pool on a Ray cluster of three hosts (network namespaces on a private bridge, tests/
netns_cluster.py), reached through the ``ray`` pool backend from a driver on the head host.

Marked ``multihost``; skipped, saying why, where network namespaces cannot be made (not root).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netns_cluster import NetnsCluster, netns_refusal

pytestmark = [pytest.mark.multihost, pytest.mark.ray, pytest.mark.slow]

POOL = "MH"


@pytest.fixture(scope="module")
def cluster() -> Iterator[NetnsCluster]:
    why = netns_refusal()
    if why:
        pytest.skip(why)
    import ray

    # a connection to a pool an earlier module dropped: Ray ends this process (exit code 1, no
    # output) once its cluster has been unreachable for a minute, mid-way through this module
    ray.shutdown()
    hosts = NetnsCluster(Path(tempfile.mkdtemp(prefix="sh", dir="/tmp")), 3)  # short: Ray's socket paths
    try:
        hosts.up()
        hosts.start_s3()  # before the Ray nodes: their workers inherit where S3 is
        hosts.start_ray({f"shoal_pool_{POOL}": 1})
        yield hosts
    finally:
        hosts.down()


def on_head(cluster: NetnsCluster, code: str) -> dict[str, object]:
    """Run ``code`` with Python on the head host, with a workspace of its own there; its last
    line of output is JSON."""
    head = cluster.hosts[0]
    done = cluster.run(head, sys.executable, "-c", code, env={"SHOAL_HOME": str(cluster.host_root / "shoal")})
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_cluster_has_one_node_per_host_each_at_its_own_address(cluster: NetnsCluster) -> None:
    seen = on_head(
        cluster,
        "import json, ray\n"
        f"ray.init(address='{cluster.hosts[0].address}:6379', logging_level='ERROR')\n"
        "@ray.remote(num_cpus=1)\n"
        "def where():\n"
        "    return ray.util.get_node_ip_address()\n"
        "nodes = [n for n in ray.nodes() if n['Alive']]\n"
        "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy as On\n"
        "ran = ray.get([where.options(scheduling_strategy=On(n['NodeID'], soft=False)).remote()\n"
        "               for n in nodes])\n"
        "print(json.dumps({'nodes': sorted(n['NodeManagerAddress'] for n in nodes), 'ran': sorted(ran)}))\n",
    )
    addresses = sorted(host.address for host in cluster.hosts)
    assert seen == {"nodes": addresses, "ran": addresses}


def test_a_file_stage_with_a_pool_on_several_hosts_is_refused_before_anything_is_written(
    cluster: NetnsCluster,
) -> None:
    seen = on_head(
        cluster,
        "import json, shoal\n"
        "from shoal.errors import ConfigError\n"
        "from shoal.jobs import remote\n"
        f"shoal.create_compute_pool('{POOL}', backend='ray', max_nodes=3, "
        f"address='{cluster.hosts[0].address}:6379')\n"
        "def hello(name: str) -> str:\n"
        "    return name\n"
        "try:\n"
        f"    remote('{POOL}', stage_name='files', target_instances=3)(hello)('x')\n"
        "    error = None\n"
        "except ConfigError as exc:\n"
        "    error = str(exc)\n"
        "print(json.dumps({'error': error, 'files': shoal.get_stage('files').list(''),\n"
        "                  'jobs': len(shoal.jobs.list_jobs())}))\n",
    )
    error = str(seen["error"])
    assert error.startswith("stage FILES keeps its files in a local folder"), error
    assert f"compute pool {POOL} has nodes on 3 hosts" in error
    assert "s3://" in error
    assert "shares_filesystem=True" in error
    assert seen["files"] == []
    assert seen["jobs"] == 0


def test_each_host_sees_its_own_folder_and_no_other_hosts(cluster: NetnsCluster) -> None:
    """What the caller needs cannot be on another host's disk and still be found: a file written
    on one host is not there on the others, at the same path, and no host sees the real folders."""
    first, second, third = cluster.hosts
    marker = cluster.host_root / "written-on-host1"
    made = cluster.run(second, "sh", "-c", f"echo here > {marker} && ls -A {cluster.root}")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "", f"host1 sees the hosts' real folders: {made.stdout}"
    for host in (first, third):
        looked = cluster.run(host, "sh", "-c", f"test -e {marker} && echo found || echo absent")
        assert looked.stdout.strip() == "absent", f"{host.name} sees host1's file"
    again = cluster.run(second, "cat", str(marker))
    assert again.stdout.strip() == "here", "host1 keeps its own disk from one process to the next"
    assert (second.folder / "written-on-host1").read_text().strip() == "here"


S3_POOL = f"{POOL}3"
DRIVER = Path(__file__).with_name("multihost_driver.py")


def drive(cluster: NetnsCluster, scenario: str, *args: str) -> dict[str, Any]:
    """Run a scenario of tests/multihost_driver.py on the head host (a fresh process each time),
    in the head host's workspace; what it found."""
    head = cluster.hosts[0]
    workspace = {"SHOAL_HOME": str(cluster.host_root / "shoal")}
    done = cluster.run(head, sys.executable, str(DRIVER), scenario, *args, env=workspace)
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def s3_pool(cluster: NetnsCluster) -> str:
    """The bucket ``runs`` on moto's S3 server, the stage S3RUNS at ``s3://runs/shoal`` and the pool
    MH3 (no shared file system) in the head host's workspace; the pool's name."""
    drive(cluster, "setup", S3_POOL, f"{cluster.hosts[0].address}:6379")
    return S3_POOL


def test_a_three_instance_job_keeps_its_payload_logs_and_result_on_an_s3_stage(
    cluster: NetnsCluster, s3_pool: str
) -> None:
    """No shared file system declared: the stage is S3 (moto's server on the bridge)."""
    seen = drive(cluster, "job", s3_pool)
    assert seen["status"].endswith("DONE"), seen
    assert sorted(seen["nodes"]) == sorted(host.address for host in cluster.hosts)
    assert "hello from the head of the job" in seen["logs"]
    assert any(key.startswith(f"shoal/{seen['job']}/") for key in seen["keys"]), seen["keys"]


def test_dpf_runs_in_sql_and_stage_mode_keep_inputs_artifacts_and_logs_on_the_s3_stage(
    cluster: NetnsCluster, s3_pool: str
) -> None:
    """SQL mode: a table of the head host's DuckDB warehouse, partitioned there; stage mode: one
    partition per parquet file put on the S3 stage. Everything is read back from S3."""
    seen = drive(cluster, "dpf", s3_pool)
    assert seen["sql"].endswith("SUCCESS"), seen
    assert seen["files"].endswith("SUCCESS"), seen
    assert {k: v["sum"] for k, v in seen["sql_seen"].items()} == seen["expected"]
    by_file = {k.removeprefix("inputs/").removesuffix(".parquet"): v for k, v in seen["file_seen"].items()}
    assert {k: v["sum"] for k, v in by_file.items()} == seen["expected"]
    ran_on = {v["host"] for v in [*seen["sql_seen"].values(), *seen["file_seen"].values()]}
    assert ran_on <= {host.address for host in cluster.hosts}, ran_on
    assert len(ran_on) >= 2, ran_on
    for partition, text in seen["sql_logs"].items():
        assert f"partition {partition} done" in text, text
    artifacts = [key for key in seen["keys"] if key.endswith("/seen.pkl")]
    assert len([key for key in artifacts if key.startswith("shoal/sql_mode/")]) == 6, artifacts
    assert len([key for key in artifacts if key.startswith("shoal/stage_mode/")]) == 6, artifacts
    assert "shoal/inputs/S3.parquet" in seen["keys"]


def test_many_model_training_on_the_s3_stage_is_read_back_by_a_fresh_process(
    cluster: NetnsCluster, s3_pool: str
) -> None:
    trained = drive(cluster, "mmt", s3_pool)
    assert trained["status"].endswith("SUCCESS"), trained
    assert drive(cluster, "mmt_read_back", s3_pool) == {
        "north": [1.0, 1.0],
        "south": [2.0, 1.0],
        "east": [3.0, 1.0],
    }


def test_xgboost_trains_over_two_hosts_from_files_on_the_s3_stage(
    cluster: NetnsCluster, s3_pool: str
) -> None:
    """Each host has one CPU: the two ranks of 1 CPU each run on two hosts, and read their own
    row groups of the stage's files from S3."""
    seen = drive(cluster, "xgboost", s3_pool)
    assert seen["ours"] < 0.2, seen
    assert seen["ours"] <= seen["single"] * 1.1, seen

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

import pytest

from netns_cluster import NetnsCluster, netns_refusal

pytestmark = [pytest.mark.multihost, pytest.mark.ray, pytest.mark.slow]

POOL = "MH"


@pytest.fixture(scope="module")
def cluster() -> Iterator[NetnsCluster]:
    why = netns_refusal()
    if why:
        pytest.skip(why)
    hosts = NetnsCluster(Path(tempfile.mkdtemp(prefix="sh", dir="/tmp")), 3)  # short: Ray's socket paths
    try:
        hosts.up()
        hosts.start_ray({f"shoal_pool_{POOL}": 1})
        yield hosts
    finally:
        hosts.down()


def on_head(cluster: NetnsCluster, code: str) -> dict[str, object]:
    """Run ``code`` with Python on the head host, with a workspace of its own there; its last
    line of output is JSON."""
    head = cluster.hosts[0]
    done = cluster.run(head, sys.executable, "-c", code, env={"SHOAL_HOME": str(head.folder / "shoal")})
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


def test_a_three_instance_job_gets_one_node_on_each_host(cluster: NetnsCluster) -> None:
    """The hosts share this machine's disk, and the pool says so (shares_filesystem=True)."""
    seen = on_head(
        cluster,
        "import json, shoal\n"
        "from shoal.jobs import remote\n"
        f"shoal.create_compute_pool('{POOL}2', backend='ray', max_nodes=3,\n"
        f"    node_resource='shoal_pool_{POOL}',\n"
        f"    address='{cluster.hosts[0].address}:6379', shares_filesystem=True)\n"
        "def instances():\n"
        "    from shoal.jobs.context import JobContext\n"
        "    return [node.address for node in JobContext.current().nodes()]\n"
        f"job = remote('{POOL}2', stage_name='shared', target_instances=3)(instances)()\n"
        "print(json.dumps({'status': str(job.wait(timeout=300)), 'nodes': job.result()}))\n",
    )
    assert seen["status"].endswith("DONE"), seen
    assert sorted(seen["nodes"]) == sorted(host.address for host in cluster.hosts)  # type: ignore[arg-type]

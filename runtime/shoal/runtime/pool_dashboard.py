"""Ray's dashboard for a local pool created without it, started when someone asks for its URL.

A local pool's head runs without Ray's API server unless the pool was created with
``include_dashboard=True`` (it costs about 1 GB of memory and seconds of start-up; decision 42).
``MLJob.get_ray_dashboard_url()`` and ``shoal.pools.api.dashboard_url`` still owe their callers a
URL that answers, as the reference's do: :func:`start_dashboard` starts Ray's own dashboard
process (``ray/dashboard/dashboard.py``, the command line Ray's head would run) against the
pool's GCS, on a free port of 127.0.0.1, in a session of its own that carries the pool's
marker, so stopping or dropping the pool stops it. It serves Ray's pages and its job, actor and
node APIs; the nodes' dashboard agents are not there (stood in for, decision 42), so per-node
metrics and log views stay empty. A pool created with ``include_dashboard=True`` has all of it.

Runs on the local pool's machine (driver or CLI).
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from shoal.errors import ShoalError
from shoal.ports import free_ports

START_TIMEOUT_S = 60.0


class DashboardStartError(ShoalError):
    """Ray's dashboard did not start for a pool; the message says where its log is."""


def dashboard_command(head: Mapping[str, str], port: int, cluster_id: str) -> list[str]:
    """The command line Ray's head runs for its dashboard, for the pool's head node ``head``."""
    import ray

    session_dir = str(Path(head["logs_dir"]).parent)
    return [
        sys.executable,
        str(Path(ray.__file__).parent / "dashboard" / "dashboard.py"),
        "--host=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--temp-dir={head['temp_dir']}",
        f"--log-dir={head['logs_dir']}",
        f"--session-dir={session_dir}",
        "--logging-rotate-bytes=104857600",
        "--logging-rotate-backup-count=3",
        f"--gcs-address={head['gcs_address']}",
        f"--cluster-id-hex={cluster_id}",
        "--node-ip-address=127.0.0.1",
        "--proxy-server-url=",
    ]


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether Ray's dashboard at ``url`` (``http://host:port``) answers its version request."""
    try:
        with urllib.request.urlopen(f"{url}/api/version", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_dashboard(head: Mapping[str, str], env: Mapping[str, str], log_path: Path) -> tuple[int, str]:
    """Start the dashboard for the pool whose head node is ``head``; return its pid and URL once
    it answers, else stop it and raise :class:`DashboardStartError` naming its log."""
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    from shoal import processes

    cluster_id = GcsClient(address=head["gcs_address"]).cluster_id.hex()
    ports, sockets = free_ports(1, "127.0.0.1")
    for sock in sockets:
        sock.close()
    url = f"http://127.0.0.1:{ports[0]}"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            dashboard_command(head, ports[0], cluster_id),
            env=dict(env),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            umask=0o077,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers(url):
        if process.poll() is not None or time.monotonic() >= deadline:
            why = (
                f"exited with code {process.returncode}"
                if process.poll() is not None
                else (f"did not answer within {START_TIMEOUT_S:.0f} s")
            )
            processes.terminate(processes.with_descendants({process.pid}), grace_s=2.0)
            raise DashboardStartError(f"Ray's dashboard for the pool {why}; its log: {log_path}")
        time.sleep(0.25)
    return process.pid, url

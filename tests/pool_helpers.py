"""Helpers for tests that start real local compute pools."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil


def run_python(code: str, home: Path, timeout: float = 300, extra_env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh Python process of this venv with ``SHOAL_HOME=home``; return stdout."""
    env = {**os.environ, "SHOAL_HOME": str(home), **(extra_env or {})}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert done.returncode == 0, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr[-4000:]}"
    )
    return done.stdout


def pool_processes(pool_id: str) -> list[int]:
    """Live processes carrying the pool's environment marker."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("SHOAL_POOL_ID") == pool_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def payload_process(job_id: str) -> psutil.Process:
    """The job's payload process (instance 0), from the pid the job writes to its stage folder."""
    from shoal.jobs import get_job
    from shoal.stages import resolve_location

    stage, job_dir = resolve_location(get_job(job_id).stage_path)
    pid = int(stage.read_text(f"{job_dir}/system/payload_pid"))
    process = psutil.Process(pid)
    assert "shoal.runtime.job_launcher" in " ".join(process.cmdline()), process.cmdline()
    return process


def listening_addresses(pids: list[int]) -> set[str]:
    """IP addresses that ``pids`` listen on (TCP)."""
    wanted = set(pids)
    addresses = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in wanted:
            addresses.add(conn.laddr.ip)
    return addresses


def pool_in_new_home(home: Path, pool: str, nodes: int, **options: Any) -> Iterator[Path]:
    """Module fixtures: point SHOAL_HOME at ``home``, start a ``nodes``-node local pool (``options``
    go to ``create_compute_pool``), yield the home, then drop the pool (``yield from`` it)."""
    import shoal

    earlier = os.environ.get("SHOAL_HOME")
    os.environ["SHOAL_HOME"] = str(home)
    try:
        shoal.create_compute_pool(pool, min_nodes=nodes, max_nodes=nodes, **options)
        yield home
    finally:
        os.environ["SHOAL_HOME"] = str(home)
        try:
            state = home / "pools" / pool.upper() / "state.json"
            pool_id = json.loads(state.read_text()).get("pool_id") if state.exists() else None
            shoal.drop_compute_pool(pool)
            if pool_id:  # nothing of the pool runs after its drop, even after a test killed a node
                from waiting import wait_until

                wait_until(lambda: not pool_processes(pool_id), f"every process of pool {pool} to end", 15)
        finally:  # later modules see the workspace they had
            if earlier is None:
                os.environ.pop("SHOAL_HOME", None)
            else:
                os.environ["SHOAL_HOME"] = earlier

"""Start one Ray node of a local compute pool and leave it running: ``python -m
shoal.runtime.node_launcher '<json spec>'``.

This does what ``ray start`` does, with differences that matter for a pool on one machine:
the node keeps ``node_ip_address=127.0.0.1`` (the CLI rewrites it to the host's address, which
makes Ray listen on every interface), every port is chosen by the OS (several pools and
nodes never collide), and a head without the dashboard starts neither Ray's API server nor its
autoscaler monitor (the pool has its own janitor; both cost a Python process and about a second
of the pool's start). The node's agent ports (dashboard agent, metrics, runtime env agent) are
picked here, free ports the OS hands out, just before Ray starts: with port 0 the raylet waits for
its agents to report the ports they bound before it registers with the GCS (about a second of
the head's start, measured; decision 41). A worker node's spec may leave ``gcs_address`` out:
the launcher then does its imports and reads the address from its standard input, so worker
nodes get ready while the head starts. The Ray processes are not tied to this launcher: it
prints one JSON line (GCS address, node id, session folder, process ids) and exits, and the node
lives on. The caller starts it in a new session, so every process of the node shares one
session id, which is how the pool finds them again to stop them.

Spec keys: ``head`` (bool), ``gcs_address`` (worker nodes), ``temp_dir``, ``num_cpus``,
``num_gpus``, ``memory`` (bytes), ``object_store_memory`` (bytes), ``resources`` (dict),
``labels`` (dict), ``node_name``, ``system_config`` (head only), ``include_dashboard`` (head only).

Runs on the machine of the local pool, in a short-lived process of its own.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from shoal.runtime.ports import free_ports


def launch(spec: dict[str, Any]) -> dict[str, Any]:
    """Start the node described by ``spec``; return what the pool records about it."""
    started = time.monotonic()
    import ray._private.node as ray_node
    import ray._private.parameter as ray_parameter
    import ray._private.utils as ray_utils

    head = bool(spec.get("head"))
    if not head and not spec.get("gcs_address"):
        address = sys.stdin.readline().strip()
        if not address:
            raise SystemExit("no GCS address came on standard input")
        spec = {**spec, "gcs_address": address}
        started = time.monotonic()
    ip = "127.0.0.1"
    params: dict[str, Any] = {
        "node_ip_address": ip,
        "node_name": spec.get("node_name", ip),
        "temp_dir": spec["temp_dir"],
        "num_cpus": spec.get("num_cpus"),
        "num_gpus": spec.get("num_gpus", 0),
        "memory": spec.get("memory"),
        "object_store_memory": spec.get("object_store_memory"),
        "resources": spec.get("resources") or {},
        "labels": spec.get("labels") or {},
        "min_worker_port": 0,
        "max_worker_port": 0,
        "node_manager_port": 0,
        "object_manager_port": 0,
        "ray_client_server_port": None,
    }
    if head:
        include_dashboard = bool(spec.get("include_dashboard", False))
        params.update(
            include_dashboard=include_dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=int(spec.get("dashboard_port", 0)),
            _system_config=spec.get("system_config") or {},
            include_log_monitor=True,
            no_monitor=True,
        )
    else:
        params.update(gcs_address=spec["gcs_address"], include_log_monitor=False)
    agent_ports, held = free_ports(4, ip)
    params.update(
        dashboard_agent_listen_port=agent_ports[0],
        metrics_export_port=agent_ports[1],
        runtime_env_agent_port=agent_ports[2],
        metrics_agent_port=agent_ports[3],
    )
    for sock in held:  # released just before Ray binds them
        sock.close()
    ray_params = ray_parameter.RayParams(**params)
    if head:
        ray_params.gcs_server_port = 0
    node_class = ray_node.Node if not head or params["include_dashboard"] else _head_without_api_server()
    node = node_class(ray_params, head=head, shutdown_at_exit=False, spawn_reaper=False)
    if head:
        ray_utils.write_ray_address(node.gcs_address, node.get_temp_dir_path())
    return {
        "gcs_address": node.gcs_address,
        "node_id": node.node_id,
        "session_dir": node.get_session_dir_path(),
        "logs_dir": node.get_logs_dir_path(),
        "temp_dir": node.get_temp_dir_path(),
        "webui_url": node.webui_url if head else None,
        "pids": {kind: [info.process.pid for info in infos] for kind, infos in node.all_processes.items()},
        "launcher_pid": os.getpid(),
        "launch_s": round(time.monotonic() - started, 3),
    }


def _head_without_api_server() -> type:
    import ray._private.node as ray_node

    class HeadWithoutApiServer(ray_node.Node):
        """A head node that skips Ray's API server (dashboard, job and state APIs)."""

        def start_api_server(self, *, include_dashboard: bool | None, raise_on_failure: bool) -> None:
            return None

    return HeadWithoutApiServer


def main() -> None:
    info = launch(json.loads(sys.argv[1]))
    sys.stdout.write(json.dumps(info) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers: nothing here may touch the node it just started


if __name__ == "__main__":
    main()

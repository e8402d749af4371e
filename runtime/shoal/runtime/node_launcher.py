"""Start one Ray node of a local compute pool and leave it running: ``python -m
shoal.runtime.node_launcher '<NodeLaunchSpec as JSON>'`` (:class:`shoal.pools.node_spec.NodeLaunchSpec`).

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

With ``include_dashboard`` the head runs Ray's dashboard; every node runs Ray's dashboard agent,
which without it is stood in for by :mod:`shoal.runtime.agent_stand_in`.

Runs on the machine of the local pool, in a short-lived process of its own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from shoal.pools.node_spec import NodeLaunchSpec, NodeStarted
from shoal.ports import free_ports


def launch(spec: NodeLaunchSpec) -> NodeStarted:
    """Start the node described by ``spec``; return what the pool records about it."""
    started = time.monotonic()
    import ray._private.node as ray_node
    import ray._private.parameter as ray_parameter
    import ray._private.utils as ray_utils

    head = spec.head
    if not head and not spec.gcs_address:
        address = sys.stdin.readline().strip()
        if not address:
            raise SystemExit("no GCS address came on standard input")
        spec = spec.with_gcs_address(address)
        started = time.monotonic()
    ip = "127.0.0.1"
    params: dict[str, Any] = {
        "node_ip_address": ip,
        "node_name": spec.node_name or ip,
        "temp_dir": spec.temp_dir,
        "num_cpus": spec.num_cpus,
        "num_gpus": spec.num_gpus,
        "memory": spec.memory,
        "object_store_memory": spec.object_store_memory,
        "resources": dict(spec.resources),
        "labels": dict(spec.labels),
        "min_worker_port": 0,
        "max_worker_port": 0,
        "node_manager_port": 0,
        "object_manager_port": 0,
        "ray_client_server_port": None,
    }
    if head:
        include_dashboard = spec.include_dashboard
        params.update(
            include_dashboard=include_dashboard,
            dashboard_host="127.0.0.1",
            dashboard_port=spec.dashboard_port,
            _system_config=dict(spec.system_config),
            include_log_monitor=True,
            no_monitor=True,
        )
    else:
        params.update(gcs_address=spec.gcs_address, include_log_monitor=False)
    stand_in = not spec.include_dashboard
    if stand_in:
        # no dashboard agent: the raylet reads its three ports (-1, not in use) from the files
        # written before it starts, and only the runtime env agent needs a port
        _stand_in_for_dashboard_agent()
        (env_agent_port,), held = free_ports(1, ip)
        params.update(runtime_env_agent_port=env_agent_port)
    else:
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
    return NodeStarted(
        gcs_address=node.gcs_address,
        node_id=node.node_id,
        session_dir=node.get_session_dir_path(),
        logs_dir=node.get_logs_dir_path(),
        temp_dir=node.get_temp_dir_path(),
        webui_url=node.webui_url if head else None,
        pids={kind: [info.process.pid for info in infos] for kind, infos in node.all_processes.items()},
        launcher_pid=os.getpid(),
        launch_s=round(time.monotonic() - started, 3),
    )


def _stand_in_for_dashboard_agent() -> None:
    """Make the raylet this process starts run :mod:`shoal.runtime.agent_stand_in` instead of
    Ray's dashboard agent (decision 42). Ray builds the agent's command line inside
    ``services.start_raylet`` and hands it to the raylet as one flag; this swaps that flag on its
    way to ``services.start_ray_process``, for the raylet only. The raylet waits for the agent's
    three port files; they are written here with -1, "not in use", as Ray's own minimal agent
    writes them for the services it does not run."""
    import importlib

    import ray
    import ray._private.ray_constants as ray_constants
    import ray._private.services as ray_services

    from shoal.runtime import agent_stand_in

    ray_raylet: Any = importlib.import_module("ray._raylet")  # its stub lacks the port helpers
    flag = "--dashboard_agent_command="
    stand_in = subprocess.list2cmdline([sys.executable, "-I", "-S", agent_stand_in.__file__])
    start_ray_process = ray_services.start_ray_process

    def start_with_stand_in(command: list[str], process_type: str, *args: Any, **kwargs: Any) -> Any:
        if process_type == ray_constants.PROCESS_TYPE_RAYLET:
            flags = dict(part[2:].split("=", 1) for part in command if part.startswith("--") and "=" in part)
            if not {"dashboard_agent_command", "session_dir", "node_id"} <= flags.keys():
                raise RuntimeError(
                    f"Ray {ray.__version__} starts its raylet without the flags shoal expects "
                    f"({flag}, --session_dir=, --node_id=), so shoal cannot stand in for the "
                    "dashboard agent; create the pool with include_dashboard=True"
                )
            for port_name in (
                ray_raylet.DASHBOARD_AGENT_LISTEN_PORT_NAME,
                ray_raylet.METRICS_AGENT_PORT_NAME,
                ray_raylet.METRICS_EXPORT_PORT_NAME,
            ):
                ray_raylet.persist_port(flags["session_dir"], flags["node_id"], port_name, -1)
            command = [flag + stand_in if part.startswith(flag) else part for part in command]
        return start_ray_process(command, process_type, *args, **kwargs)

    ray_services.start_ray_process = start_with_stand_in


def _head_without_api_server() -> type:
    import ray._private.node as ray_node

    class HeadWithoutApiServer(ray_node.Node):
        """A head node that skips Ray's API server (dashboard, job and state APIs)."""

        def start_api_server(self, *, include_dashboard: bool | None, raise_on_failure: bool) -> None:
            return None

    return HeadWithoutApiServer


def main() -> None:
    started = launch(NodeLaunchSpec.from_json(sys.argv[1]))
    sys.stdout.write(started.to_json() + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip atexit handlers: nothing here may touch the node it just started


if __name__ == "__main__":
    main()

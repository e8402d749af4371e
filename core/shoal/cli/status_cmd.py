"""``shoal status`` and ``shoal snowpark ...``: what of the workspace runs on this machine, and
stopping the workspace's Snowpark service. Runs on the driver (the CLI process)."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.output import emit_json, format_option, print_table, progress


def snowpark_service_row() -> dict[str, Any]:
    """The workspace's Snowpark service as a row: running or not, its pid, port and idle timeout."""
    import os

    from shoal.data.snowpark_service import DEFAULT_IDLE_S, ENV_IDLE, running_service, service_folder

    found = running_service()
    return {
        "what": "snowpark service",
        "name": "SNOWPARK",
        "state": "RUNNING" if found else "STOPPED",
        "detail": (
            f"pid {found.pid}, 127.0.0.1:{found.port}; stops after "
            f"{float(os.environ.get(ENV_IDLE, DEFAULT_IDLE_S)):.0f} s idle; `shoal snowpark stop`"
            if found
            else f"starts on first use; its databases: {service_folder() / 'databases'}"
        ),
    }


@click.command("status")
@format_option
def status(output_format: str) -> None:
    """What of this workspace runs on this machine: the compute pools and the Snowpark service."""
    from shoal.pools.api import list_compute_pools

    rows: list[dict[str, Any]] = [
        {
            "what": "compute pool",
            "name": info["name"],
            "state": info["state"],
            "detail": f"{info['active_nodes']}/{info['max_nodes']} node(s), {info['backend']}"
            + ("; `shoal pool stop " + info["name"] + "`" if info["state"] == "ACTIVE" else ""),
        }
        for info in list_compute_pools()
    ]
    rows.append(snowpark_service_row())
    if output_format == "json":
        emit_json(rows)
    else:
        print_table(("what", "name", "state", "detail"), rows)


@click.group("snowpark")
def snowpark() -> None:
    """The workspace's Snowpark service (Snowflake SQL on DuckDB, for Snowpark sessions)."""


@snowpark.command("stop")
def stop() -> None:
    """Stop the workspace's Snowpark service (it starts again on the next session)."""
    from shoal.data.snowpark_service import stop_service

    progress("stopped the Snowpark service" if stop_service() else "the Snowpark service was not running")

"""``shoal pool ...``: create, list, describe, start, stop and drop compute pools. Runs on the driver."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.output import emit_json, format_option, iso_utc, print_fields, print_table, progress
from shoal.cli.params import KeyValue, key_values
from shoal.errors import PoolBusyError

POOL_COLUMNS = (
    "name",
    "state",
    "backend",
    "active_nodes",
    "min_nodes",
    "max_nodes",
    "instance_family",
    "created_on",
)


def _pool_row(info: dict[str, Any]) -> dict[str, Any]:
    return {**info, "created_on": iso_utc(info.get("created_on"))}


def _print_pools(infos: list[dict[str, Any]], output_format: str) -> None:
    rows = [_pool_row(info) for info in infos]
    if output_format == "json":
        emit_json(rows)
    else:
        print_table(POOL_COLUMNS, rows, empty="no compute pools")


@click.group()
def pool() -> None:
    """Manage compute pools (a local Ray cluster, or nodes of an existing Ray cluster)."""


@pool.command("create")
@click.argument("name")
@click.option("--max-nodes", type=int, required=True, help="Never more nodes than this.")
@click.option("--min-nodes", type=int, default=1, show_default=True, help="Nodes kept running.")
@click.option("--instance-family", default="CPU_X64_XS", show_default=True, help="Size of each node.")
@click.option("--backend", default="local", show_default=True, help="local | ray | a plugin's backend.")
@click.option(
    "--option",
    "-o",
    "options",
    type=KeyValue(json_values=True),
    multiple=True,
    help="Backend option KEY=VALUE (repeatable; VALUE read as JSON when it parses).",
)
@click.option("--suspended", is_flag=True, help="Do not start nodes now.")
@format_option
def create(
    name: str,
    max_nodes: int,
    min_nodes: int,
    instance_family: str,
    backend: str,
    options: tuple[tuple[str, Any], ...],
    suspended: bool,
    output_format: str,
) -> None:
    """Create compute pool NAME (and start its min nodes)."""
    from shoal.pools.api import create_compute_pool

    info = create_compute_pool(
        name,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        instance_family=instance_family,
        backend=backend,
        initially_suspended=suspended,
        **key_values(options),
    )
    _print_pools([info], output_format)


@pool.command("ls")
@format_option
def ls(output_format: str) -> None:
    """List compute pools."""
    from shoal.pools.api import list_compute_pools

    _print_pools(list_compute_pools(), output_format)


@pool.command("describe")
@click.argument("name")
@format_option
def describe(name: str, output_format: str) -> None:
    """Show pool NAME in detail."""
    from shoal.pools.api import describe_compute_pool

    info = _pool_row(describe_compute_pool(name))
    if output_format == "json":
        emit_json(info)
    else:
        print_fields(info)


@pool.command("start")
@click.argument("name")
@format_option
def start(name: str, output_format: str) -> None:
    """Start pool NAME's min nodes."""
    from shoal.pools.api import start_compute_pool

    _print_pools([start_compute_pool(name)], output_format)


@pool.command("stop")
@click.argument("name")
@click.option("--force", is_flag=True, help="Stop it even while jobs run on it (they end INTERNAL_ERROR).")
def stop(name: str, force: bool) -> None:
    """Stop every node of pool NAME (nothing of it keeps running)."""
    from shoal.pools.api import stop_compute_pool

    _refuse_with_running_jobs(name, force, "stop")
    stop_compute_pool(name)
    progress(f"stopped {name}")


@pool.command("stop-idle")
@click.argument("name")
def stop_idle(name: str) -> None:
    """Stop pool NAME's nodes that hold no job now (never the head, never below min_nodes)."""
    from shoal.pools.idle import stop_idle_nodes

    stopped = stop_idle_nodes(name)
    progress(f"stopped {len(stopped)} idle node(s) of {name}" + (f": {stopped}" if stopped else ""))


def _refuse_with_running_jobs(name: str, force: bool, verb: str) -> None:
    """Without ``force``, an error naming the jobs that have not ended on pool ``name``."""
    from shoal.jobs.listing import job_summaries
    from shoal.jobs.status import JobStatus
    from shoal.pools.api import describe_compute_pool

    if force:
        return
    pool_name = describe_compute_pool(name)["name"]
    unfinished = {status.value for status in JobStatus if not status.is_terminal}
    running = [s for s in job_summaries(0) if s.compute_pool == pool_name and s.status in unfinished]
    if running:
        names = ", ".join(f"{s.name} ({s.status})" for s in running[:10]) + (
            ", ..." if len(running) > 10 else ""
        )
        raise PoolBusyError(
            f"pool {pool_name} has {len(running)} job(s) that have not ended: {names}; cancel them "
            f"(shoal job cancel ID) or wait for them, or pass --force to {verb} it anyway"
        )


@pool.command("drop")
@click.argument("name")
@click.option("--force", is_flag=True, help="Drop it even while jobs run on it (they end INTERNAL_ERROR).")
def drop(name: str, force: bool) -> None:
    """Stop pool NAME and forget it."""
    from shoal.pools.api import drop_compute_pool

    _refuse_with_running_jobs(name, force, "drop")
    drop_compute_pool(name)
    progress(f"dropped {name}")

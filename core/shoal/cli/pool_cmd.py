"""``shoal pool ...``: create, list, describe, start, stop and drop compute pools. Runs on the driver."""

from __future__ import annotations

import json
from typing import Any

import click


def _parse_options(pairs: tuple[str, ...]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--option")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@click.group()
def pool() -> None:
    """Manage compute pools (a local Ray cluster, or nodes of an existing Ray cluster)."""


@pool.command("create")
@click.argument("name")
@click.option("--max-nodes", type=int, required=True, help="Never more nodes than this.")
@click.option("--min-nodes", type=int, default=1, show_default=True, help="Nodes kept running.")
@click.option("--instance-family", default="CPU_X64_XS", show_default=True, help="Size of each node.")
@click.option("--backend", default="local", show_default=True, help="local | ray | a plugin's backend.")
@click.option("--option", "-o", "options", multiple=True, help="Backend option KEY=VALUE (repeatable).")
@click.option("--suspended", is_flag=True, help="Do not start nodes now.")
def create(
    name: str,
    max_nodes: int,
    min_nodes: int,
    instance_family: str,
    backend: str,
    options: tuple[str, ...],
    suspended: bool,
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
        **_parse_options(options),
    )
    click.echo(f"{info['name']}\t{info['state']}\t{info['active_nodes']} node(s)")


@pool.command("ls")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ls(as_json: bool) -> None:
    """List compute pools."""
    from shoal.pools.api import list_compute_pools

    pools = list_compute_pools()
    if as_json:
        click.echo(json.dumps(pools, indent=2))
        return
    for info in pools:
        click.echo(
            f"{info['name']}\t{info['state']}\t{info['backend']}\t{info['active_nodes']}/{info['max_nodes']} "
            f"nodes\t{info['instance_family']}"
        )


@pool.command("describe")
@click.argument("name")
def describe(name: str) -> None:
    """Show pool NAME in detail (JSON)."""
    from shoal.pools.api import describe_compute_pool

    click.echo(json.dumps(describe_compute_pool(name), indent=2))


@pool.command("start")
@click.argument("name")
def start(name: str) -> None:
    """Start pool NAME's min nodes."""
    from shoal.pools.api import start_compute_pool

    info = start_compute_pool(name)
    click.echo(f"{info['name']}\t{info['state']}\t{info['active_nodes']} node(s)")


@pool.command("stop")
@click.argument("name")
def stop(name: str) -> None:
    """Stop every node of pool NAME (nothing of it keeps running)."""
    from shoal.pools.api import stop_compute_pool

    stop_compute_pool(name)
    click.echo(f"stopped {name}")


@pool.command("drop")
@click.argument("name")
def drop(name: str) -> None:
    """Stop pool NAME and forget it."""
    from shoal.pools.api import drop_compute_pool

    drop_compute_pool(name)
    click.echo(f"dropped {name}")

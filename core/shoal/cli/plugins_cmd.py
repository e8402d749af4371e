"""``shoal plugins ...``: show which plugins are installed and what they contribute.

Runs on the driver. Listing never calls a contribution's factory, so it never imports an ML
framework.
"""

from __future__ import annotations

from typing import Any

import click

from shoal import hooks
from shoal.cli.output import emit_json, format_option, print_table
from shoal.contributions import CONTRIBUTION_TYPES
from shoal.extras import install_hint, missing
from shoal.plugin_manager import get_plugin_manager


def plugin_table() -> list[dict[str, Any]]:
    """One dict per registered plugin: name, distribution, version, source, hooks, contributions,
    and the extras its contributions need that are not installed (``"needs"``:
    ``["shoal[xgboost]"]``; a module outside shoal's extras is named as the module)."""
    pm = get_plugin_manager()
    contributed: dict[str, dict[str, list[str]]] = {}
    needs: dict[str, list[str]] = {}
    for kind in CONTRIBUTION_TYPES:
        for spec, plugin_name in hooks.collect_with_origin(kind, pm):
            contributed.setdefault(plugin_name, {}).setdefault(kind, []).append(spec.name)
            for module in missing(getattr(spec, "frameworks", ())):
                hint = install_hint(module).removeprefix("pip install ").strip("'")
                if hint not in needs.setdefault(plugin_name, []):
                    needs[plugin_name].append(hint)
    rows = []
    for record in pm.records():
        rows.append(
            {
                "name": record.name,
                "distribution": record.distribution,
                "version": record.version,
                "source": record.source,
                "target": record.target,
                "hooks": pm.hooks_of(record.name),
                "contributes": contributed.get(record.name, {}),
                "needs": needs.get(record.name, []),  # extras its contributions lack here
            }
        )
    return rows


@click.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@format_option
def list_plugins(output_format: str) -> None:
    """List plugins: name, distribution, version, the hooks each implements, what it contributes."""
    rows = plugin_table()
    if output_format == "json":
        emit_json(rows)
        return
    table = []
    for row in rows:
        contributes = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in row["contributes"].items())
        if row["needs"]:
            contributes += f" (needs {', '.join(row['needs'])})"
        table.append({**row, "hooks": ", ".join(row["hooks"]), "contributes": contributes})
    print_table(
        ("name", "distribution", "version", "source", "hooks", "contributes"), table, empty="no plugins"
    )

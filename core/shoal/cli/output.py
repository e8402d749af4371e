"""How every ``shoal`` command prints: data on stdout, as a table or as JSON (``--format``);
progress and status lines on stderr; times as ISO-8601 UTC. Runs on the driver (the CLI process).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TypeVar

import click

FORMATS = ("table", "json")
F = TypeVar("F", bound=Callable[..., Any])


def format_option(command: F) -> F:
    """``--format table|json`` (default ``table``) and ``--json``, its alias, both filling the
    command's ``output_format`` argument."""
    command = click.option(
        "--json", "output_format", flag_value="json", help="Print JSON (same as --format json)."
    )(command)
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="Print a table or JSON.",
    )(command)


def iso_utc(value: float | str | datetime | None) -> str | None:
    """A time as ISO-8601 UTC with a ``Z`` (``2026-12-07T07:43:29Z``): from Unix seconds, a
    datetime (naive ones are taken as UTC) or an ISO string; None stays None."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(float(value), tz=timezone.utc)
    elif isinstance(value, str):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    else:
        moment = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def emit_json(data: Any) -> None:
    """``data`` as indented JSON on stdout (values JSON does not know are written as text)."""
    click.echo(json.dumps(data, indent=2, default=str))


def print_table(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], *, empty: str = "") -> None:
    """Rows as a table on stdout, one column per name in ``columns``, the header first. On a
    terminal, rich draws it to the terminal's width; piped, it is plain text, columns two spaces
    apart and as wide as their longest cell, so no name is ever cut and ``awk``/``cut`` read it.
    With no rows, prints ``empty`` on stderr (when given) and nothing on stdout."""
    cells = [["" if row.get(c) is None else str(row.get(c)) for c in columns] for row in rows]
    if not cells:
        if empty:
            click.echo(empty, err=True)
        return
    if not sys.stdout.isatty():
        widths = [max(len(line[i]) for line in [list(columns), *cells]) for i in range(len(columns))]
        for line in [list(columns), *cells]:
            click.echo(
                "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            )
        return
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for line in cells:
        table.add_row(*(escape(cell) for cell in line))
    Console(highlight=False).print(table)


def print_fields(document: Mapping[str, Any]) -> None:
    """One object as a two-column table (field, value); values that are not text as JSON."""
    print_table(
        ("field", "value"),
        [
            {"field": key, "value": value if isinstance(value, str) else json.dumps(value, default=str)}
            for key, value in document.items()
        ],
    )


def progress(message: str) -> None:
    """A status or progress line, on stderr (stdout carries the data)."""
    click.echo(message, err=True)

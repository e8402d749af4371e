"""The HTML that shoal's objects show in a notebook (``_repr_html_``): small, self-contained
(inline styles, no script), every user string escaped.

Statuses are coloured badges carrying ``data-status``; counts carry ``data-count`` (what tests
and scripts read back). Runs on the driver.
"""

from __future__ import annotations

import html
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone

#: badge colours by status (jobs, runs, partitions, pools)
COLOURS = {
    "DONE": "#1a7f37",
    "SUCCESS": "#1a7f37",
    "ACTIVE": "#1a7f37",
    "RUNNING": "#0969da",
    "IN_PROGRESS": "#0969da",
    "PENDING": "#9a6700",
    "CANCELLING": "#9a6700",
    "PARTIAL_FAILURE": "#bc4c00",
    "FAILED": "#cf222e",
    "FAILURE": "#cf222e",
    "INTERNAL_ERROR": "#8250df",
    "CANCELLED": "#6e7781",
    "SUSPENDED": "#6e7781",
    "DELETED": "#6e7781",
    "UNKNOWN": "#6e7781",
}
#: the longest error a table shows (the whole one is in the partition's log)
ERROR_CHARS = 300
#: the most rows a table shows in a notebook
MAX_ROWS = 50

_CELL = "padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #d0d7de"


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value))


def badge(status: object) -> str:
    """A status as a coloured badge."""
    text = str(getattr(status, "value", status))
    colour = COLOURS.get(text, "#57606a")
    return (
        f'<span class="shoal-status" data-status="{esc(text)}" style="background:{colour};color:#fff;'
        f'padding:1px 6px;border-radius:4px;font-weight:600;font-size:0.9em">{esc(text)}</span>'
    )


def count(status: str, value: int) -> str:
    """A count of ``status``, as a badge and its number."""
    return f'{badge(status)} <span data-count="{esc(status)}">{int(value)}</span>'


def when(timestamp: float | None) -> str:
    """A time as UTC ISO text ('' when unknown)."""
    if not timestamp:
        return ""
    return datetime.fromtimestamp(float(timestamp), tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def duration(start: float | None, end: float | None = None) -> str:
    """How long from ``start`` to ``end`` (now when ``end`` is None): ``1 min 05 s``."""
    if not start:
        return ""
    seconds = max(0.0, (end or time.time()) - float(start))
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def shortened(text: object, limit: int = ERROR_CHARS) -> str:
    value = "" if text is None else str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def link(url: str, text: str) -> str:
    return f'<a href="{esc(url)}" target="_blank">{esc(text)}</a>'


def fields(title: str, rows: Iterable[tuple[str, str]], kind: str) -> str:
    """A titled two-column table of (name, HTML value); empty values are left out."""
    body = "".join(
        f'<tr><th style="{_CELL};font-weight:600">{esc(name)}</th><td style="{_CELL}">{value}</td></tr>'
        for name, value in rows
        if value not in ("", None)
    )
    return (
        f'<div class="shoal-{esc(kind)}"><div style="font-weight:600;margin:4px 0">{title}</div>'
        f'<table style="border-collapse:collapse">{body}</table></div>'
    )


def table(columns: Sequence[str], rows: Sequence[Sequence[str]], kind: str, total: int | None = None) -> str:
    """A table of HTML cells (at most :data:`MAX_ROWS` rows, saying how many were left out)."""
    head = "".join(f'<th style="{_CELL};font-weight:600">{esc(c)}</th>' for c in columns)
    shown = rows[:MAX_ROWS]
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{cell}</td>' for cell in row) + "</tr>" for row in shown
    )
    all_rows = len(rows) if total is None else total
    more = (
        f'<div style="color:#57606a">{all_rows - len(shown)} more not shown</div>'
        if all_rows > len(shown)
        else ""
    )
    return (
        f'<div class="shoal-{esc(kind)}"><table style="border-collapse:collapse">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}</div>"
    )


def pre(text: str, title: str = "") -> str:
    """Pre-formatted text in a box that scrolls (logs)."""
    heading = f'<div style="font-weight:600;margin:4px 0">{esc(title)}</div>' if title else ""
    return (
        f'<div class="shoal-logs">{heading}<pre style="max-height:30em;overflow:auto;white-space:pre;'
        f'background:#f6f8fa;padding:6px;border:1px solid #d0d7de">{esc(text)}</pre></div>'
    )


def counts_line(counts: Mapping[str, int]) -> str:
    """``DONE 38 · FAILED 2`` as badges, in the order of :data:`COLOURS`."""
    order = {name: i for i, name in enumerate(COLOURS)}
    return " &nbsp; ".join(
        count(name, value)
        for name, value in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99))
        if value
    )

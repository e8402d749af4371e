"""What jobs, runs, partitions, pools and job listings show in a notebook: the bodies of their
``_repr_html_``, built from what they read (statuses, counts, timings, errors, where the logs
are, and a link to the web view when ``shoal ui`` serves).

Runs on the driver.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shoal.display import html
from shoal.display.webview import web_view_url

if TYPE_CHECKING:
    import pandas as pd

    from shoal.dpf.run import DPFRun, SinglePartitionDetails
    from shoal.jobs.job import MLJob

#: the failed partitions a run shows, at most
FAILED_SHOWN = 10


def _web(path: str) -> str:
    url = web_view_url()
    return html.link(url + path, "open in the web view") if url else ""


def job_html(job: MLJob[Any]) -> str:
    """A job: its status, pool, instances, times, message, warnings and where its logs are."""
    details = job.details()
    status = job.status
    instances = details.get("instances")
    asked = f"{job.target_instances} (at least {job.min_instances})"
    rows = [
        ("status", html.badge(status)),
        ("id", html.esc(job.id)),
        ("compute pool", html.esc(job.compute_pool)),
        ("instances", html.esc(f"{instances} of {asked}" if instances else asked)),
        ("created", html.esc(html.when(details.get("created_time")))),
        ("started", html.esc(html.when(details.get("started_time")))),
        ("ended", html.esc(html.when(details.get("completed_time")))),
        (
            "ran for",
            html.esc(html.duration(details.get("started_time"), details.get("completed_time")))
            if details.get("started_time")
            else "",
        ),
        ("message", html.esc(html.shortened(details.get("message")))),
        ("warnings", "<br>".join(html.esc(w) for w in details.get("warnings") or [])),
        (
            "logs",
            html.esc(f"{job.stage_path}/logs/instance-<i>.log") + " &nbsp; (<code>job.show_logs()</code>)",
        ),
        ("web view", _web(f"/jobs/{job.id}")),
    ]
    return html.fields(f"ML job {html.esc(job.name)}", rows, "job")


def run_html(run: DPFRun, kind: str) -> str:
    """A run: its status, counts by status, times, its failed partitions with their last error,
    and where the logs are."""
    details = run.partition_details
    counts = Counter(str(d.status.value) for d in details.values())
    started = [d.started_at for d in details.values() if d.started_at]
    ended = [d.ended_at for d in details.values() if d.ended_at]
    definition = run.definition
    status = run.status
    failed = [d for d in details.values() if d.status.value in ("FAILED", "INTERNAL_ERROR")]
    rows = [
        ("status", html.badge(status)),
        ("partitions", f"{len(details)} &nbsp; " + html.counts_line(counts)),
        ("stage", html.esc(f"@{run.stage_name}/{run.run_id}/")),
        ("job", html.esc(run.job_id or "")),
        ("started", html.esc(html.when(definition.get("created")))),
        (
            "partitions ran",
            html.esc(
                html.duration(min(started), max(ended) if ended and status.value != "IN_PROGRESS" else None)
            )
            if started
            else "",
        ),
        ("message", html.esc(html.shortened(run.message))),
        (
            "logs",
            html.esc(f"@{run.stage_name}/{run.run_id}/<partition>/train.log")
            + " &nbsp; (<code>run.partition_details[key].logs</code>)",
        ),
        ("web view", _web(f"/stages/{run.stage_name}/runs/{run.run_id}")),
    ]
    body = html.fields(f"{html.esc(kind)} run {html.esc(run.run_id)}", rows, "run")
    if failed:
        body += '<div style="font-weight:600;margin:6px 0 2px">failed partitions</div>'
        body += _partition_rows(failed[:FAILED_SHOWN], total=len(failed))
    return body


def _partition_rows(details: Sequence[SinglePartitionDetails], total: int | None = None) -> str:
    rows = [
        [
            html.esc(d.partition_id),
            html.badge(d.status),
            html.esc(d.attempts),
            html.esc("" if d.duration_s is None else f"{d.duration_s:.1f} s"),
            f"<code>{html.esc(html.shortened(_last_line(d.error)))}</code>" if d.error else "",
        ]
        for d in details
    ]
    return html.table(["partition", "status", "attempts", "took", "last error"], rows, "partitions", total)


def _last_line(error: str | None) -> str:
    """An error's last non-empty line (a traceback's is the exception)."""
    lines = [line for line in (error or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def partitions_html(details: Mapping[str, SinglePartitionDetails]) -> str:
    """A run's ``partition_details``: the counts by status, then each partition."""
    counts = Counter(str(d.status.value) for d in details.values())
    head = f'<div style="margin:4px 0">{len(details)} partitions &nbsp; {html.counts_line(counts)}</div>'
    return head + _partition_rows(list(details.values()))


def pools_html(pools: Sequence[Mapping[str, Any]]) -> str:
    """``list_compute_pools()``: one row per pool."""
    rows = [
        [
            html.esc(p.get("name")),
            html.badge(p.get("state", "UNKNOWN")),
            html.esc(p.get("backend")),
            html.esc(f"{p.get('active_nodes', 0)} of {p.get('min_nodes')}-{p.get('max_nodes')}"),
            html.esc(p.get("instance_family")),
            html.esc(p.get("created_on")),
        ]
        for p in pools
    ]
    return html.table(["pool", "state", "backend", "nodes up", "family", "created"], rows, "pools")


def pool_html(pool: Mapping[str, Any]) -> str:
    """``describe_compute_pool()``: the pool and its nodes."""
    rows = [
        ("state", html.badge(pool.get("state", "UNKNOWN"))),
        ("backend", html.esc(pool.get("backend"))),
        (
            "nodes up",
            html.esc(
                f"{pool.get('active_nodes', 0)} (min {pool.get('min_nodes')}, max {pool.get('max_nodes')})"
            ),
        ),
        ("family", html.esc(pool.get("instance_family"))),
        ("address", html.esc(pool.get("address") or "")),
        (
            "Ray dashboard",
            html.link(str(pool["dashboard"]), str(pool["dashboard"])) if pool.get("dashboard") else "",
        ),
        ("web view", _web("/pools")),
    ]
    return html.fields(f"compute pool {html.esc(pool.get('name'))}", rows, "pool")


def jobs_html(frame: pd.DataFrame) -> str:
    """``list_jobs()``: one row per job, its status as a badge."""
    columns = [str(c) for c in frame.columns]
    rows = [
        [
            html.badge(value) if column == "status" else html.esc(_cell(value))
            for column, value in zip(columns, row, strict=True)
        ]
        for row in frame.itertuples(index=False)
    ]
    counts = Counter(str(s) for s in frame["status"]) if "status" in frame else Counter()
    head = f'<div style="margin:4px 0">{len(frame)} jobs &nbsp; {html.counts_line(counts)}</div>'
    return head + html.table(columns, rows, "jobs")


def _cell(value: Any) -> str:
    """A listing's value as text (missing times as '')."""
    import pandas as pd

    if value is None or (not isinstance(value, (list, tuple, dict)) and pd.isna(value)):
        return ""
    return str(value)

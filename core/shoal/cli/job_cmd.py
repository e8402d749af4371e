"""``shoal job ...``: submit and follow multi-node jobs. Runs on the driver."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

#: How often ``shoal job logs --follow`` looks for new lines.
FOLLOW_PERIOD_S = 0.25


@click.group()
def job() -> None:
    """Submit and follow multi-node jobs."""


@job.command("submit", context_settings={"ignore_unknown_options": True})
@click.argument("path")
@click.option("--pool", "compute_pool", required=True, help="Compute pool to run on.")
@click.option(
    "--stage-name", default="SHOAL_JOBS", show_default=True, help="Stage for code, output and logs."
)
@click.option("--instances", type=int, default=1, show_default=True, help="target_instances.")
@click.option("--min-instances", type=int, default=None, help="Start with this many nodes if no more come.")
@click.option("--entrypoint", default=None, help="For a folder: the .py file to run (relative to it).")
@click.option("--env", "env", multiple=True, help="Environment variable KEY=VALUE for the job (repeatable).")
@click.option("--timeout", "instances_timeout", type=float, default=None, help="Seconds to wait for nodes.")
@click.option("--wait/--no-wait", default=False, help="Wait for the job and print its result.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def submit(
    path: str,
    compute_pool: str,
    stage_name: str,
    instances: int,
    min_instances: int | None,
    entrypoint: str | None,
    env: tuple[str, ...],
    instances_timeout: float | None,
    wait: bool,
    args: tuple[str, ...],
) -> None:
    """Submit FILE, DIR or a folder on a stage (@STAGE/path) as a job; ARGS after `--` go to the
    payload."""
    from shoal.jobs import submit_directory, submit_file, submit_from_stage

    malformed = [item for item in env if "=" not in item or not item.split("=", 1)[0]]
    if malformed:  # a value is a secret: name the item only when it has none
        raise click.BadParameter(f"{malformed[0]!r} is not KEY=VALUE", param_hint="--env")
    env_vars = dict(item.split("=", 1) for item in env)
    options: dict[str, Any] = {
        "stage_name": stage_name,
        "target_instances": instances,
        "min_instances": min_instances,
        "env_vars": env_vars,
        "instances_timeout": instances_timeout,
        "args": list(args),
    }
    local = Path(path)
    if path.startswith("@"):
        if not entrypoint:
            raise click.UsageError("submitting a folder on a stage needs --entrypoint FILE.py")
        handle = submit_from_stage(path, compute_pool, entrypoint=entrypoint, **options)
    elif local.is_dir():
        if not entrypoint:
            raise click.UsageError("submitting a folder needs --entrypoint FILE.py")
        handle = submit_directory(local, compute_pool, entrypoint=entrypoint, **options)
    elif local.exists():
        handle = submit_file(local, compute_pool, **options)
    else:
        raise click.BadParameter(
            f"{path!r} is not a file, a folder or a stage path (@STAGE/path)", param_hint="PATH"
        )
    click.echo(handle.id)
    if wait:
        _follow_status(handle)
        click.echo(json.dumps(handle.result(), default=str))


def _follow_status(handle: object) -> None:
    from shoal.jobs import MLJob

    assert isinstance(handle, MLJob)
    last = None
    while True:
        details = handle.details()
        status = handle.status
        line = f"{status.value} {details.get('message', '')}".strip()
        if line != last:
            click.echo(f"[{handle.id}] {line}", err=True)
            last = line
        if status.is_terminal:
            return
        time.sleep(0.5)


@job.command("ls")
@click.option("--limit", type=int, default=10, show_default=True, help="Newest N jobs (0: all).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def ls(limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    from dataclasses import asdict
    from datetime import datetime, timezone

    from shoal.jobs.listing import job_summaries

    def iso(seconds: float | None) -> str | None:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat() if seconds else None

    summaries = job_summaries(limit)
    if as_json:
        rows = [
            {**asdict(s), "created_time": iso(s.created_time), "completed_time": iso(s.completed_time)}
            for s in summaries
        ]
        click.echo(json.dumps(rows))
        return
    if not summaries:
        click.echo("no jobs")
        return
    table = [("name", "status", "compute_pool", "target_instances", "created_time")] + [
        (s.name, s.status, s.compute_pool, str(s.target_instances), iso(s.created_time) or "")
        for s in summaries
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@job.command("status")
@click.argument("job_id")
def status(job_id: str) -> None:
    """Show a job's status and details (JSON)."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    details = handle.details()
    details["status"] = handle.status.value
    click.echo(json.dumps(details, indent=2, default=str))


@job.command("logs")
@click.argument("job_id")
@click.option("--instance", type=int, default=None, help="Instance id (default 0, the head).")
@click.option("--verbose", is_flag=True, help="Include everything, not only the payload's output.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
def logs(job_id: str, instance: int | None, verbose: bool, follow: bool) -> None:
    """Print a job's log."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    if not follow:
        click.echo(handle.get_logs(instance_id=instance, verbose=verbose))
        return
    offset = 0
    while True:  # everything, banners included, as the instance's agent appends it
        ended = handle.status.is_terminal
        data = handle.read_log_from(offset, instance_id=instance)
        if data:
            offset += len(data)
            click.echo(data.decode(errors="replace"), nl=False)
        if ended:  # read once more after the end was seen: nothing written before it is missed
            return
        time.sleep(FOLLOW_PERIOD_S)


@job.command("cancel")
@click.argument("job_id")
def cancel(job_id: str) -> None:
    """Cancel a job."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    handle.cancel()
    click.echo(f"{handle.id}\t{handle.status.value}")


@job.command("result")
@click.argument("job_id")
@click.option("--timeout", type=float, default=-1, help="Seconds to wait (-1: no limit).")
def result(job_id: str, timeout: float) -> None:
    """Wait for a job and print its result as JSON (or its error)."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    try:
        value = handle.result(timeout=timeout)
    except RuntimeError as exc:
        click.echo(f"Error: {exc}", err=True)
        cause = exc.__cause__
        if cause is not None:
            click.echo(f"Caused by: {type(cause).__name__}: {cause}", err=True)
        sys.exit(1)
    click.echo(json.dumps(value, default=str))


@job.command("delete")
@click.argument("job_id")
def delete(job_id: str) -> None:
    """Delete a finished job (its files on the stage and its record)."""
    from shoal.jobs import delete_job

    delete_job(job_id)
    click.echo(f"deleted {job_id}")

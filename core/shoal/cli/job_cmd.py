"""``shoal job ...``: submit and follow multi-node jobs. Runs on the driver."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from shoal.cli import one_line
from shoal.cli.output import emit_json, format_option, iso_utc, print_fields, print_table, progress
from shoal.cli.params import KeyValue, key_values
from shoal.errors import ShoalError

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
@click.option(
    "--instances", type=click.IntRange(min=1), default=1, show_default=True, help="target_instances."
)
@click.option(
    "--min-instances",
    type=click.IntRange(min=1),
    default=None,
    help="Start with this many nodes if no more come.",
)
@click.option("--entrypoint", default=None, help="For a folder: the .py file to run (relative to it).")
@click.option(
    "--env", "env", type=KeyValue(), multiple=True, help="Environment variable KEY=VALUE (repeatable)."
)
@click.option(
    "--timeout",
    "instances_timeout",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds to wait for nodes.",
)
@click.option("--wait/--no-wait", default=False, help="Wait for the job and print its result.")
@click.option(
    "--follow", "-f", is_flag=True, help="Print the job's log as it runs, until it ends (implies --wait)."
)
@format_option
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def submit(
    path: str,
    compute_pool: str,
    stage_name: str,
    instances: int,
    min_instances: int | None,
    entrypoint: str | None,
    env: tuple[tuple[str, str], ...],
    instances_timeout: float | None,
    wait: bool,
    follow: bool,
    output_format: str,
    args: tuple[str, ...],
) -> None:
    """Submit FILE, DIR or a folder on a stage (@STAGE/path) as a job; ARGS after `--` go to the
    payload. Prints the job's id; with --wait or --follow, waits, prints its result and exits 1
    unless the job ends DONE."""
    from shoal.jobs import submit_directory, submit_file, submit_from_stage

    env_vars = key_values(env)
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
    if not (wait or follow):
        if output_format == "json":
            emit_json({"id": handle.id, "status": handle.status.value})
        else:
            click.echo(handle.id)
        return
    progress(f"submitted {handle.id}")
    if follow:
        _follow_log(handle, instance=None)
    else:
        _follow_status(handle)
    _print_outcome(handle, output_format)


def _print_outcome(handle: Any, output_format: str) -> None:
    """The ended job's result (stdout); a job that did not end DONE is a one-line error."""
    final = handle.status
    if final.value != "DONE":
        message = handle.details().get("message") or ""
        if final.value == "FAILED":
            message = _failure(handle) or message
        raise JobOutcomeError(
            f"job {handle.id} ended {final.value}"
            + (f": {message}" if message else "")
            + f"; its log: shoal job logs {handle.id}"
        )
    value = handle.result()
    if output_format == "json":
        emit_json({"id": handle.id, "status": final.value, "result": value})
    else:
        click.echo(json.dumps(value, default=str))


def _failure(handle: Any) -> str:
    """The failed job's own error, on one line ("" when it left none)."""
    try:
        handle.result(timeout=0)
    except ShoalError:
        return ""
    except RuntimeError as exc:
        return one_line(str(exc))
    return ""


class JobOutcomeError(ShoalError):
    """A job waited for on the command line did not end DONE (exit code 1)."""


def _follow_status(handle: Any) -> None:
    """Status changes on stderr until the job ends."""
    last = None
    while True:
        details = handle.details()
        status = handle.status
        line = f"{status.value} {details.get('message', '')}".strip()
        if line != last:
            progress(f"[{handle.id}] {line}")
            last = line
        if status.is_terminal:
            return
        time.sleep(0.5)


def _follow_log(handle: Any, instance: int | None, verbose: bool = False) -> None:
    """Print the instance's log as it grows, from offset to offset, until the job ends: what
    ``shoal job logs`` prints (for instance 0, only the payload's output between the job's banners,
    unless ``verbose``). Ctrl-C or SIGTERM stop following quietly (the job goes on)."""
    previous = signal.getsignal(signal.SIGTERM)
    shown = PayloadLines(everything=verbose or (instance or 0) != 0)
    offset = 0
    try:
        while True:
            signal.signal(signal.SIGTERM, _stop_following)
            # the job's record and its pool's state, not its service: no Ray connection here, whose
            # signal handlers would print a stack on SIGTERM
            ended = handle.shallow_status().is_terminal
            data = handle.read_log_from(offset, instance_id=instance)
            if data:
                offset += len(data)
                text = shown.feed(data.decode(errors="replace"))
                if text:
                    click.echo(text, nl=False)
            if ended:  # read once more after the end was seen: nothing written before it is missed
                click.echo(shown.rest(), nl=False)
                return
            # again: reading the status may have connected Ray, whose driver sets its own handler
            signal.signal(signal.SIGTERM, _stop_following)
            time.sleep(FOLLOW_PERIOD_S)
    except KeyboardInterrupt:
        sys.exit(0)
    except SystemExit as exc:  # Ray's own SIGTERM handler, if the signal came while it was set
        sys.exit(0 if exc.code == signal.SIGTERM else exc.code)
    finally:
        signal.signal(signal.SIGTERM, previous)


class PayloadLines:
    """A growing log, cut to what ``MLJob.get_logs`` shows: whole lines between the job's
    started and finished banners (everything with ``everything``)."""

    def __init__(self, *, everything: bool) -> None:
        from shoal.jobs.job import FINISHED_BANNER, STARTED_BANNER

        self.started, self.finished = STARTED_BANNER, FINISHED_BANNER
        self.inside = everything
        self.everything = everything
        self.ended = False
        self.partial = ""

    def feed(self, text: str) -> str:
        """The part of ``text`` (appended to what came before) to print now."""
        if self.everything:
            return text
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()  # an unfinished line waits for its end
        out = []
        for line in lines:
            if self.ended:
                break
            if not self.inside:
                self.inside = line == self.started
            elif line == self.finished:
                self.ended = True
            else:
                out.append(line + "\n")
        return "".join(out)

    def rest(self) -> str:
        """What is left when the log is complete: an unfinished last line of the payload."""
        if self.everything or not self.inside or self.ended or not self.partial:
            return ""
        return self.partial + "\n"


def _stop_following(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


JOB_COLUMNS = ("id", "status", "compute_pool", "target_instances", "created_time", "completed_time")


@job.command("ls")
@click.option(
    "--limit", type=click.IntRange(min=0), default=10, show_default=True, help="Newest N jobs (0: all)."
)
@format_option
def ls(limit: int, output_format: str) -> None:
    """List jobs, newest first."""
    from dataclasses import asdict

    from shoal.jobs.listing import job_summaries

    rows = []
    for summary in job_summaries(limit):
        row = asdict(summary)
        row["id"] = row.pop("name")
        row["created_time"] = iso_utc(summary.created_time)
        row["completed_time"] = iso_utc(summary.completed_time)
        rows.append({"id": row.pop("id"), **row})
    if output_format == "json":
        emit_json(rows)
    else:
        print_table(JOB_COLUMNS, rows, empty="no jobs")


@job.command("status")
@click.argument("job_id")
@format_option
def status(job_id: str, output_format: str) -> None:
    """Show a job's status and details."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    details = handle.details()
    details["status"] = handle.status.value
    for key in ("created_time", "started_time", "completed_time", "updated"):
        if key in details:
            details[key] = iso_utc(details[key])
    document = {"id": handle.id, **{k: v for k, v in sorted(details.items()) if k != "id"}}
    if output_format == "json":
        emit_json(document)
    else:
        print_fields(document)


@job.command("logs")
@click.argument("job_id")
@click.option(
    "--instance", type=click.IntRange(min=0), default=None, help="Instance id (default 0, the head)."
)
@click.option("--verbose", is_flag=True, help="Include everything, not only the payload's output.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the job ends.")
def logs(job_id: str, instance: int | None, verbose: bool, follow: bool) -> None:
    """Print a job's log."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    if not follow:
        click.echo(handle.get_logs(instance_id=instance, verbose=verbose))
        return
    handle.get_logs(instance_id=instance, limit=0)  # an instance the job does not have: a clear error
    _follow_log(handle, instance, verbose)


@job.command("cancel")
@click.argument("job_id")
@format_option
def cancel(job_id: str, output_format: str) -> None:
    """Cancel a job."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    handle.cancel()
    row = {"id": handle.id, "status": handle.status.value}
    if output_format == "json":
        emit_json(row)
    else:
        print_table(("id", "status"), [row])


@job.command("result")
@click.argument("job_id")
@click.option("--timeout", type=float, default=-1, help="Seconds to wait (-1: no limit).")
def result(job_id: str, timeout: float) -> None:
    """Wait for a job and print its result as JSON; exit 1 with its error when it did not end DONE."""
    from shoal.jobs import get_job

    handle = get_job(job_id)
    try:
        value = handle.result(timeout=timeout)
    except ShoalError:
        raise
    except RuntimeError as exc:
        cause = exc.__cause__
        raise JobOutcomeError(
            one_line(str(exc))
            + (f" (caused by {type(cause).__name__}: {one_line(str(cause))})" if cause is not None else "")
            + f"; its log: shoal job logs {handle.id}"
        ) from None
    click.echo(json.dumps(value, default=str))


@job.command("delete")
@click.argument("job_id")
def delete(job_id: str) -> None:
    """Delete a finished job (its files on the stage and its record)."""
    from shoal.jobs import delete_job

    delete_job(job_id)
    progress(f"deleted {job_id}")

"""``shoal dpf ...``: run a distributed partition function and follow it. Runs on the driver."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any

import click

from shoal.cli.output import emit_json, format_option, print_table, progress
from shoal.errors import ArtifactsExistError, ShoalError


def _load_function(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(
            "expected MODULE:FUNCTION, e.g. mypkg.train:fit_store", param_hint="FUNCTION"
        )
    # The working directory by its absolute path: a finder cached for "." by an earlier call
    # from another directory would not see this one's modules.
    sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise click.BadParameter(
            f"cannot import {module_name!r} ({exc}); MODULE must be importable from the current "
            f"folder ({os.getcwd()}) or the installed packages",
            param_hint="FUNCTION",
        ) from None
    finally:
        sys.path.pop(0)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise click.BadParameter(f"{module_name} has no attribute {attr!r}", param_hint="FUNCTION") from None


def input_options(command: Any) -> Any:
    """The input, stage and retry options of ``shoal dpf run``, for other commands that start runs."""
    for option in reversed(
        [
            click.option("--partition-by", help="Column whose values name the partitions (SQL mode)."),
            click.option("--table", help="A table of the embedded DuckDB warehouse."),
            click.option("--sql", "query", help="A query on the embedded DuckDB warehouse."),
            click.option(
                "--stage", "stage_location", help="Stage mode: @stage/path, one file per partition."
            ),
            click.option(
                "--pattern", default="*.parquet", show_default=True, help="Stage mode: file pattern."
            ),
            click.option(
                "--pool", "compute_pool", default=None, help="Compute pool (default: the default pool)."
            ),
            click.option("--stage-name", required=True, help="Stage for models, artifacts and logs."),
            click.option(
                "--overwrite", is_flag=True, help="Replace the artifacts of an earlier run of this id."
            ),
            click.option("--max-retries", type=int, default=1, show_default=True),
            click.option("--fail-fast", is_flag=True),
            click.option("--wait/--no-wait", default=True, help="Wait with a progress bar."),
        ]
    ):
        command = option(command)
    return format_option(command)


@click.group()
def dpf() -> None:
    """Run a function once per partition of a table, query or set of stage files."""


@dpf.command("run")
@click.argument("function")
@click.option("--run-id", required=True, help="Name of the run (a folder on the stage).")
@input_options
def run(
    function: str,
    partition_by: str | None,
    table: str | None,
    query: str | None,
    stage_location: str | None,
    pattern: str,
    compute_pool: str | None,
    stage_name: str,
    run_id: str,
    overwrite: bool,
    max_retries: int,
    fail_fast: bool,
    wait: bool,
    output_format: str,
) -> None:
    """Run FUNCTION (MODULE:FUNC taking (data_connector, context)) over the partitions. Prints the
    run's status and partition counts; with --wait (the default) exits 1 unless it ends SUCCESS."""
    from shoal.dpf import DPF

    runner = DPF(_load_function(function), stage_name, compute_pool=compute_pool)
    start_run(
        runner,
        partition_by=partition_by,
        table=table,
        query=query,
        stage_location=stage_location,
        pattern=pattern,
        stage_name=stage_name,
        run_id=run_id,
        overwrite=overwrite,
        max_retries=max_retries,
        fail_fast=fail_fast,
        wait=wait,
        output_format=output_format,
    )


def start_run(
    runner: Any,
    *,
    partition_by: str | None,
    table: str | None,
    query: str | None,
    stage_location: str | None,
    pattern: str,
    stage_name: str,
    run_id: str,
    overwrite: bool,
    max_retries: int,
    fail_fast: bool,
    wait: bool,
    output_format: str = "table",
) -> Any:
    """Start ``runner`` (a DPF, or a many-model one) over the input the options name; with
    ``wait``, show its progress (stderr) to the end. Prints the run's summary (stdout); raises
    :class:`RunOutcomeError` when a waited-for run did not end SUCCESS. Shared by ``shoal dpf run``
    and ``shoal mmt``."""
    from shoal.dpf import ExecutionOptions

    chosen = [x for x in (table, query, stage_location) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --table, --sql or --stage")
    if stage_location and partition_by:
        raise click.UsageError(
            "--partition-by applies to --table and --sql; with --stage each file is a partition "
            "(leave --partition-by out, or use --sql to partition the files' rows by a column)"
        )
    if not stage_location and not partition_by:
        raise click.UsageError("--partition-by is required with --table or --sql")
    options = ExecutionOptions(max_retries=max_retries, fail_fast=fail_fast)
    on_existing = "overwrite" if overwrite else "error"
    try:
        if stage_location:
            handle = runner.run_from_stage(
                stage_location=stage_location,
                run_id=run_id,
                file_pattern=pattern,
                on_existing_artifacts=on_existing,
                execution_options=options,
            )
        else:
            from shoal.data import DataConnector
            from shoal.dpf.partitioners import quote_identifier

            handle = runner.run(
                partition_by=partition_by,
                dataframe=DataConnector.from_sql(query or f"SELECT * FROM {quote_identifier(table or '')}"),
                run_id=run_id,
                on_existing_artifacts=on_existing,
                execution_options=options,
            )
    except ArtifactsExistError as exc:
        raise ArtifactsExistError(
            f"@{exc.stage}/{exc.run_id}/ already holds the artifacts of an earlier run; pass --overwrite "
            "to replace them, or choose another --run-id",
            stage=exc.stage,
            run_id=exc.run_id,
        ) from None
    from shoal.stages import get_stage

    stage = get_stage(stage_name).name
    progress(f"run {handle.run_id} started on @{stage}")
    if not wait:
        print_runs([run_summary(handle, stage)], output_format)
        return handle
    ended = handle.wait()
    progress(f"run {handle.run_id}: {ended.value}")
    print_runs([run_summary(handle, stage)], output_format)
    if ended.value != "SUCCESS":
        raise RunOutcomeError(_run_outcome(handle, ended.value, stage))
    return handle


class RunOutcomeError(ShoalError):
    """A run waited for on the command line did not end in SUCCESS (exit code 1)."""


def _run_outcome(handle: Any, status: str, stage_name: str) -> str:
    """One line: how the run ended, which partitions failed, where their logs are."""
    failed = sorted(handle.get_progress().get("FAILED", []), key=lambda p: str(p.partition_id))
    line = f"run {handle.run_id} ended {status}"
    if failed:
        names = ", ".join(str(p.partition_id) for p in failed[:5]) + (", ..." if len(failed) > 5 else "")
        line += (
            f": {len(failed)} partition(s) failed ({names}); a partition's log: "
            f"shoal dpf logs {handle.run_id} {failed[0].partition_id} --stage-name {stage_name}"
        )
    message = getattr(handle, "message", "")
    if message and not failed:
        line += f": {message}"
    return line


def run_summary(handle: Any, stage: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A run as the commands print it: id, stage, status, and the count of partitions in every
    status (zeros included, so the keys are always the same). ``details``: the run's
    ``partition_details`` when the caller read them already."""
    from collections import Counter

    from shoal.dpf import PartitionStatus

    counts = Counter(
        d.status.value for d in (handle.partition_details if details is None else details).values()
    )
    return {
        "run_id": handle.run_id,
        "stage": stage,
        "status": handle.status.value,
        "partitions": {s.value: counts.get(s.value, 0) for s in PartitionStatus},
    }


def print_runs(summaries: list[dict[str, Any]], output_format: str) -> None:
    if output_format == "json":
        emit_json(summaries)
        return
    rows = [
        {"run_id": r["run_id"], "status": r["status"], **{k.lower(): v for k, v in r["partitions"].items()}}
        for r in summaries
    ]
    columns = ["run_id", "status", *(k.lower() for k in summaries[0]["partitions"])] if summaries else []
    print_table(columns, rows, empty="no runs")


@dpf.command("status")
@click.argument("run_id")
@click.option("--stage-name", required=True)
@click.option("--watch", is_flag=True, help="Refresh until the run ends.")
@format_option
def status(run_id: str, stage_name: str, watch: bool, output_format: str) -> None:
    """Show a run's status and partition counts."""
    from shoal.dpf import DPFRun, RunStatus
    from shoal.stages import get_stage

    handle = DPFRun.restore_from(run_id, stage_name)
    stage = get_stage(stage_name).name
    while True:
        summary = run_summary(handle, stage)
        if output_format == "json":
            click.echo(json.dumps(summary))
        else:
            print_runs([summary], output_format)
        if not watch or handle.status != RunStatus.IN_PROGRESS:
            return
        time.sleep(1.0)


@dpf.command("logs")
@click.argument("run_id")
@click.argument("partition_id")
@click.option("--stage-name", required=True)
def logs(run_id: str, partition_id: str, stage_name: str) -> None:
    """Print one partition's train.log."""
    from shoal.dpf import DPFRun

    details = DPFRun.restore_from(run_id, stage_name).partition_details
    if partition_id not in details:
        raise click.UsageError(
            f"no partition {partition_id!r} in run {run_id}; e.g. {', '.join(list(details)[:5])}"
        )
    click.echo(details[partition_id].logs)


@dpf.command("ls")
@click.option("--stage-name", required=True)
@format_option
def ls(stage_name: str, output_format: str) -> None:
    """List the runs on a stage with their status and partition counts."""
    from shoal.dpf import DPFRun, layout
    from shoal.stages import get_stage

    stage = get_stage(stage_name)
    runs = layout.run_ids(stage)
    print_runs([run_summary(DPFRun.restore_from(r, stage_name), stage.name) for r in runs], output_format)

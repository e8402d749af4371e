"""``shoal dpf ...``: run a distributed partition function and follow it. Runs on the driver."""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
from typing import Any

import click


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
    return command


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
) -> None:
    """Run FUNCTION (MODULE:FUNC taking (data_connector, context)) over the partitions."""
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
) -> Any:
    """Start ``runner`` (a DPF, or a many-model one) over the input the options name; print its
    progress to the end with ``wait``. Shared by ``shoal dpf run`` and ``shoal mmt``."""
    from shoal.dpf import ExecutionOptions

    chosen = [x for x in (table, query, stage_location) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --table, --sql or --stage")
    options = ExecutionOptions(max_retries=max_retries, fail_fast=fail_fast)
    on_existing = "overwrite" if overwrite else "error"
    if stage_location:
        handle = runner.run_from_stage(
            stage_location=stage_location,
            run_id=run_id,
            file_pattern=pattern,
            on_existing_artifacts=on_existing,
            execution_options=options,
        )
    else:
        if not partition_by:
            raise click.UsageError("--partition-by is required with --table or --sql")
        from shoal.data import DataConnector
        from shoal.dpf.partitioners import quote_identifier

        sql = query or f"SELECT * FROM {quote_identifier(table or '')}"
        handle = runner.run(
            partition_by=partition_by,
            dataframe=DataConnector.from_sql(sql),
            run_id=run_id,
            on_existing_artifacts=on_existing,
            execution_options=options,
        )
    click.echo(f"run {handle.run_id} started on @{stage_name}")
    if wait:
        click.echo(f"run {handle.run_id}: {handle.wait().value}")
    return handle


@dpf.command("status")
@click.argument("run_id")
@click.option("--stage-name", required=True)
@click.option("--watch", is_flag=True, help="Refresh until the run ends.")
def status(run_id: str, stage_name: str, watch: bool) -> None:
    """Show a run's status and partition counts (JSON)."""
    from shoal.dpf import DPFRun, RunStatus

    handle = DPFRun.restore_from(run_id, stage_name)
    while True:
        counts = {k: len(v) for k, v in handle.get_progress().items()}
        current = handle.status
        click.echo(json.dumps({"run_id": run_id, "status": current.value, "partitions": counts}))
        if not watch or current != RunStatus.IN_PROGRESS:
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
def ls(stage_name: str) -> None:
    """List the runs on a stage with their status."""
    from shoal.dpf import DPFRun
    from shoal.stages import get_stage

    stage = get_stage(stage_name)
    runs = sorted({p.split("/", 1)[0] for p in stage.list("", pattern="run.json")})
    for run_id in runs:
        click.echo(f"{run_id}\t{DPFRun.restore_from(run_id, stage_name).status.value}")

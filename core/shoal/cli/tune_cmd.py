"""``shoal tune ls|show``: the tuning runs on a stage and their trials. Runs on the driver."""

from __future__ import annotations

from typing import Any

import click

from shoal.cli.output import emit_json, format_option, iso_utc, print_table

STAGE_HELP = "The stage that keeps the runs (default SHOAL_TUNE)."


@click.group()
def tune() -> None:
    """Hyper-parameter tuning runs (shoal.tune.Tuner)."""


@tune.command("ls")
@click.option("--stage-name", default=None, help=STAGE_HELP)
@format_option
def ls(stage_name: str | None, output_format: str) -> None:
    """List the tuning runs: status, trials, and the best trial's metric."""
    from shoal.tune.records import DEFAULT_STAGE, list_runs
    from shoal.tune.results import TunerResults

    stage = stage_name or DEFAULT_STAGE
    rows = [_summary(TunerResults.restore_from(run_id, stage)) for run_id in list_runs(stage)]
    if output_format == "json":
        emit_json(rows)
        return
    columns = [
        "run_id",
        "status",
        "trials",
        "done",
        "failed",
        "stopped",
        "metric",
        "best",
        "best_trial_id",
        "created",
    ]
    print_table(columns, rows, empty=f"no tuning runs on @{stage}")


def _summary(results: Any) -> dict[str, Any]:
    run = results.run
    statuses = [t.status for t in results.trials]
    best = results.best_result
    return {
        "run_id": run.run_id,
        "status": run.status,
        "trials": len(statuses),
        "done": statuses.count("DONE"),
        "failed": statuses.count("FAILED"),
        "stopped": statuses.count("STOPPED"),
        "metric": f"{run.metric} ({run.mode})",
        "best": None if best.empty else best.iloc[0][_metric_column(best, run.metric)],
        "best_trial_id": results.best_trial_id,
        "created": iso_utc(run.created_at),
        "job_id": run.job_id,
        "message": run.message,
    }


def _metric_column(frame: Any, metric: str) -> str:
    return metric if metric in frame.columns else f"metric/{metric}"


@tune.command("show")
@click.argument("run_id")
@click.option("--stage-name", default=None, help=STAGE_HELP)
@click.option("--trial", "trial_id", default=None, help="Print this trial's log instead.")
@format_option
def show(run_id: str, stage_name: str | None, trial_id: str | None, output_format: str) -> None:
    """A run's trials: parameters, metrics, status and error, best first line marked with *."""
    from shoal.tune.records import DEFAULT_STAGE
    from shoal.tune.results import TunerResults

    results = TunerResults.restore_from(run_id, stage_name or DEFAULT_STAGE)
    if trial_id is not None:
        if trial_id not in {t.trial_id for t in results.trials}:
            raise click.UsageError(f"run {run_id} has no trial {trial_id!r}")
        click.echo(results.get_log(trial_id), nl=False)
        return
    frame = results.results
    rows = []
    for record in frame.to_dict("records"):
        record["best"] = "*" if record["trial_id"] == results.best_trial_id else ""
        record["started_at"] = iso_utc(record["started_at"])
        record["ended_at"] = iso_utc(record["ended_at"]) if record["ended_at"] == record["ended_at"] else None
        error = record.get("error")
        record["error"] = error.strip().splitlines()[-1] if isinstance(error, str) and error else None
        rows.append(record)
    if output_format == "json":
        emit_json({**_summary(results), "trials": rows})
        return
    summary = _summary(results)
    click.echo(
        f"run {run_id}: {summary['status']}, {summary['trials']} trial(s) ({summary['done']} done, "
        f"{summary['failed']} failed, {summary['stopped']} stopped); {summary['metric']}, best "
        f"{summary['best']} ({summary['best_trial_id']})"
        + (f"; {summary['message']}" if summary["message"] else "")
    )
    skip = {"started_at", "ended_at", "node_id"}
    columns = ["best", *(c for c in frame.columns if c not in skip)]
    print_table(columns, [{k: _cell(v) for k, v in row.items()} for row in rows])


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if value != value else f"{value:.6g}"
    return value

"""``shoal mmt ...``: train one model per partition, score with them, list them. Runs on the driver."""

from __future__ import annotations

import json
from typing import Any

import click

from shoal.cli.dpf_cmd import _load_function, input_options, start_run
from shoal.cli.output import emit_json, format_option, print_table
from shoal.cli.params import KeyValue, key_values


@click.group()
def mmt() -> None:
    """Many-model training and inference: one model per partition."""


@mmt.command("train")
@click.argument("run_id")
@click.option(
    "--function", "function", help="MODULE:FUNC taking (data_connector, context), returning a model."
)
@click.option("--estimator", help="Or: an estimator plugin (xgboost, lightgbm, ...) fitted per partition.")
@click.option("--label-col", help="With --estimator: the column to predict.")
@click.option("--input-cols", help="With --estimator: comma-separated feature columns (default: all others).")
@click.option(
    "--option",
    "estimator_options",
    type=KeyValue(json_values=True),
    multiple=True,
    help="With --estimator: KEY=VALUE (repeatable; VALUE read as JSON when it parses).",
)
@click.option("--serde", default=None, help="Model serde by name (default: pickle, or the estimator's own).")
@input_options
def train(
    run_id: str,
    function: str | None,
    estimator: str | None,
    label_col: str | None,
    input_cols: str | None,
    estimator_options: tuple[tuple[str, Any], ...],
    serde: str | None,
    compute_pool: str | None,
    stage_name: str,
    **inputs: Any,
) -> None:
    """Train one model per partition as run RUN_ID."""
    from shoal.mmt import ManyModelTraining

    if (function is None) == (estimator is None):
        raise click.UsageError("give exactly one of --function or --estimator")
    if estimator is not None:
        if not label_col:
            raise click.UsageError("--estimator needs --label-col")
        runner = ManyModelTraining.from_estimator(
            estimator,
            stage_name,
            label_col=label_col,
            input_cols=[c.strip() for c in input_cols.split(",") if c.strip()] if input_cols else None,
            serde=serde,
            compute_pool=compute_pool,
            **key_values(estimator_options),
        )
    else:
        assert function is not None
        runner = ManyModelTraining(
            _load_function(function), stage_name, serde=serde, compute_pool=compute_pool
        )
    start_run(runner, stage_name=stage_name, run_id=run_id, **inputs)


@mmt.command("infer")
@click.argument("run_id")
@click.option(
    "--function", "function", required=True, help="MODULE:FUNC taking (data_connector, model, context)."
)
@click.option("--training-run-id", required=True, help="The training run whose models are used.")
@input_options
def infer(
    run_id: str, function: str, training_run_id: str, compute_pool: str | None, stage_name: str, **inputs: Any
) -> None:
    """Score each partition with its model from --training-run-id, as run RUN_ID."""
    from shoal.mmt import ManyModelInference

    runner = ManyModelInference(
        _load_function(function), stage_name, training_run_id, compute_pool=compute_pool
    )
    start_run(runner, stage_name=stage_name, run_id=run_id, **inputs)


@mmt.command("models")
@click.argument("run_id")
@click.option("--stage-name", required=True, help="The stage of the training run.")
@format_option
def models(run_id: str, stage_name: str, output_format: str) -> None:
    """List the models of training run RUN_ID: partition, path, size, serde."""
    from shoal.mmt import ManyModelRun

    frame = ManyModelRun.restore_from(run_id, stage_name).models()
    rows = json.loads(frame.to_json(orient="records"))
    if output_format == "json":
        emit_json(rows)
    else:
        print_table(list(frame.columns), rows, empty="no models")

"""The tuner without Ray: config and search-space checks, the trial's records, settling, the best
trial, results read back. Trials run in order in this process through a fake executor."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shoal import tune
from shoal.data import DataConnector
from shoal.errors import ConfigError, RunConflictError, RunNotFoundError, TuningError
from shoal.stages import create_stage
from shoal.tune.records import RunStore
from shoal.tune.search import BayesOpt, GridSearch, RandomSearch
from shoal.tune.space import grid_points
from shoal.tune.trial import NO_REPORT, TrialJob, TrialRun
from shoal.tune.tuner import TrialEnd, TunePlan, Tuner, tune_on_job_nodes

STAGE = "TUNE_UNITS"


class InOrder:
    """A TrialExecutor that runs every trial in this process, one after the other."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.stop_after = stop_after

    def points(self, plan: TunePlan) -> list[dict[str, Any]]:
        if isinstance(plan.search_alg, GridSearch):
            return grid_points(plan.space)
        rng = random.Random(0)
        return [{k: _draw(v, rng) for k, v in plan.space.items()} for _ in range(plan.num_trials)]

    def run(self, plan: TunePlan, job: TrialJob, node_ids: list[str]) -> list[TrialEnd]:
        ends = []
        for number, params in enumerate(self.points(plan)):
            trial_id = f"t_{number:05d}"
            run = TrialRun(job, trial_id, number, params, send=self._send, node_id="node-a")
            try:
                run.run()
                error = None
            except SystemExit:
                error = None  # the scheduler ended it
            except Exception as exc:  # a failed trial is an outcome here
                error = f"{type(exc).__name__}: {exc}"
            ends.append(TrialEnd(trial_id, number, params, error))
        return ends

    def _send(self, metrics: dict[str, Any]) -> None:
        self.sent.append(metrics)
        if self.stop_after is not None and len(self.sent) >= self.stop_after:
            self.sent.clear()
            raise SystemExit(0)  # how Ray Tune's report ends a trial its scheduler stopped


def _draw(value: Any, rng: random.Random) -> Any:
    if isinstance(value, tune.Uniform):
        return rng.uniform(value.lower, value.upper)
    if isinstance(value, tune.RandInt):
        return rng.randrange(value.lower, value.upper)
    if isinstance(value, list):
        return rng.choice(value)
    return value


def start(
    tuner: Tuner,
    run_id: str,
    executor: Any,
    data: dict[str, Any] | None = None,
    max_reports: int | None = None,
) -> tune.TunerResults:
    """What ``Tuner.run`` does in a job, with ``executor`` for Ray Tune."""
    from shoal.tune.tuner import _check_dataset_map

    create_stage(STAGE, exist_ok=True)
    plan = tuner._plan(run_id)
    RunStore(STAGE, run_id).write_run(tuner._record(plan))
    job = TrialJob(run_id, STAGE, plan.metric, tuner.train_func, _check_dataset_map(data), max_reports)
    return tune_on_job_nodes(plan, job, executor)


def quadratic() -> None:
    context = tune.get_tuner_context()
    x = context.get_hyper_params()["x"]
    print(f"trying x={x}")
    context.report({"loss": (x - 3) ** 2, "x_seen": x}, model={"x": x})


def test_a_grid_runs_every_point_once_and_the_best_is_its_lowest_loss(tmp_path: Path) -> None:
    tuner = Tuner(quadratic, {"x": [1, 2, 3, 4], "fixed": "a"}, tune.TunerConfig("loss", "min", GridSearch()))
    results = start(tuner, "grid", InOrder())
    frame = results.results
    assert list(frame["config/x"]) == [1, 2, 3, 4]
    assert set(frame["config/fixed"]) == {"a"}
    assert list(frame["status"]) == ["DONE"] * 4
    assert list(frame["loss"]) == [4, 1, 0, 1]
    assert results.best_result["config/x"].tolist() == [3]
    assert results.best_result.iloc[0].to_dict() == frame.iloc[2].to_dict()
    assert results.best_model == {"x": 3}
    assert results.status == "DONE"
    assert "trying x=2" in results.get_log(frame["trial_id"][1])


def test_max_mode_picks_the_highest_metric() -> None:
    tuner = Tuner(quadratic, {"x": [1, 6, 2]}, tune.TunerConfig("loss", "max", GridSearch()))
    assert start(tuner, "max", InOrder()).best_result["config/x"].tolist() == [6]


def boom_on_two() -> None:
    context = tune.get_tuner_context()
    if context.get_hyper_params()["x"] == 2:
        raise ValueError("x=2 is not allowed")
    context.report({"loss": context.get_hyper_params()["x"]})


def test_a_failed_trial_is_recorded_with_its_error_and_the_others_are_intact() -> None:
    tuner = Tuner(boom_on_two, {"x": [1, 2, 3]}, tune.TunerConfig("loss", "min", GridSearch()))
    results = start(tuner, "failing", InOrder())
    frame = results.results
    assert list(frame["status"]) == ["DONE", "FAILED", "DONE"]
    assert "ValueError: x=2 is not allowed" in frame["error"][1]
    assert list(frame["loss"].isna()) == [False, True, False]
    assert results.best_result["config/x"].tolist() == [1]
    assert results.run.message == "1 of 3 trial(s) failed"


def never_reports() -> None:
    print("no report")


def wrong_metric() -> None:
    tune.get_tuner_context().report({"accuracy": 1.0})


def test_no_report_or_a_report_without_the_metric_fails_the_trial_and_then_the_run() -> None:
    with pytest.raises(TuningError, match="all 1 trial"):
        start(
            Tuner(never_reports, {"x": [1]}, tune.TunerConfig("loss", "min", GridSearch())),
            "silent",
            InOrder(),
        )
    (trial,) = RunStore(STAGE, "silent").read_trials()
    assert (trial.status, trial.error) == ("FAILED", NO_REPORT)
    assert RunStore(STAGE, "silent").read_run().status == "FAILED"
    with pytest.raises(TuningError):
        start(
            Tuner(wrong_metric, {"x": [1]}, tune.TunerConfig("loss", "min", GridSearch())), "wrong", InOrder()
        )
    (trial,) = RunStore(STAGE, "wrong").read_trials()
    assert "without 'loss', the metric TunerConfig ranks the trials by" in str(trial.error)


def epochs() -> None:
    context = tune.get_tuner_context()
    for epoch in range(5):
        context.report({"loss": context.get_hyper_params()["x"] - epoch})


def test_a_trial_the_scheduler_stopped_is_settled_as_stopped_with_its_last_report() -> None:
    tuner = Tuner(epochs, {"x": [10, 20]}, tune.TunerConfig("loss", "min", GridSearch()))
    results = start(tuner, "stopped", InOrder(stop_after=2))
    frame = results.results
    assert list(frame["status"]) == ["STOPPED", "STOPPED"]
    assert list(frame["loss"]) == [9, 19]
    assert all(frame["ended_at"] >= frame["started_at"])


def test_a_trial_the_scheduler_ended_after_its_last_allowed_report_is_done() -> None:
    tuner = Tuner(epochs, {"x": [10]}, tune.TunerConfig("loss", "min", GridSearch()))
    results = start(tuner, "all_reports", InOrder(stop_after=2), max_reports=2)
    assert list(results.results["status"]) == ["DONE"]


def reads_data() -> None:
    context = tune.get_tuner_context()
    rows = len(context.get_dataset_map()["train"].to_pandas())
    context.report({"loss": float(rows)})


def test_trials_read_the_dataset_map_and_results_come_back_from_the_stage() -> None:
    data = {"train": DataConnector.from_dataframe(pd.DataFrame({"a": range(7)}))}
    config = tune.TunerConfig("loss", "min", RandomSearch(random_state=1), num_trials=3)
    tuner = Tuner(reads_data, {"x": tune.uniform(0, 1), "n": tune.randint(1, 4)}, config)
    results = start(tuner, "data", InOrder(), data)
    again = tune.TunerResults.restore_from("data", STAGE)
    assert list(again.results["loss"]) == [7.0, 7.0, 7.0]
    pd.testing.assert_frame_equal(again.results, results.results)
    assert again.best_model is None  # reported without a model
    with pytest.raises(RunNotFoundError, match="no tuning run 'nope' on @TUNE_UNITS; its runs: data"):
        tune.TunerResults.restore_from("nope", STAGE)


@pytest.mark.parametrize(
    ("space", "config", "message"),
    [
        ({}, tune.TunerConfig("m", "min", num_trials=1), "non-empty dict"),
        (
            {"x": tune.uniform(0, 1)},
            tune.TunerConfig("m", "min", GridSearch()),
            "GridSearch walks through lists",
        ),
        ({"x": [1, 2]}, tune.TunerConfig("m", "min", GridSearch(), num_trials=3), "the grid has 2 point"),
        ({"x": [1, 2]}, tune.TunerConfig("m", "min", RandomSearch()), "needs num_trials"),
        ({"x": [1]}, tune.TunerConfig("m", "best", num_trials=1), "mode must be 'min' or 'max'"),
        ({"x": [1]}, tune.TunerConfig("", "min", num_trials=1), "metric must name"),
        ({"x": tune.loguniform(0, 1)}, tune.TunerConfig("m", "min", num_trials=1), "bounds above 0"),
        ({"x": tune.randint(0.5, 3)}, tune.TunerConfig("m", "min", num_trials=1), "whole-number bounds"),  # type: ignore[arg-type]
        ({"x": tune.uniform(2, 1)}, tune.TunerConfig("m", "min", num_trials=1), "lower < upper"),
        ({"x": []}, tune.TunerConfig("m", "min", num_trials=1), "empty list"),
        ({"x": [1]}, tune.TunerConfig("m", "min", num_trials=1, max_concurrent_trials=0), "max_concurrent"),
        ({"x": [1]}, tune.TunerConfig("m", "min", num_trials=1, resource_per_trial={"TPU": 1}), "'TPU'"),
        ({"x": [1]}, tune.TunerConfig("m", "min", num_trials=1, resource_per_trial={"CPU": -1}), "0 or more"),
        (
            {"x": [1]},
            tune.TunerConfig("m", "min", num_trials=1, early_stopping=tune.ASHA(max_t=2, grace_period=3)),
            "grace_period",
        ),
        ({"x": [1]}, tune.TunerConfig("m", "min", search_alg="random", num_trials=1), "search_alg must be"),  # type: ignore[arg-type]
    ],
)
def test_a_bad_config_or_space_is_refused_when_the_tuner_is_built(
    space: Any, config: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Tuner(quadratic, space, config)


def test_bad_data_a_bad_run_id_or_a_taken_one_is_refused_before_anything_runs() -> None:
    tuner = Tuner(quadratic, {"x": [1]}, tune.TunerConfig("loss", "min", GridSearch()))
    with pytest.raises(
        ConfigError, match=r"dataset_map\['train'\] is a DataFrame; wrap data in a DataConnector"
    ):
        tuner.run({"train": pd.DataFrame({"a": [1]})}, stage_name=STAGE)
    with pytest.raises(ConfigError, match="path separator"):
        tuner.run(run_id="../up", stage_name=STAGE)
    start(tuner, "taken", InOrder())
    with pytest.raises(RunConflictError, match="tuning run 'taken' exists on @TUNE_UNITS"):
        tuner.run(run_id="taken", stage_name=STAGE)
    assert RunStore(STAGE, "taken").read_run().status == "DONE"  # the earlier run is untouched


def test_the_grid_is_the_product_of_the_lists_first_key_slowest() -> None:
    assert grid_points({"a": [1, 2], "b": ["x", "y"], "c": 0}) == [
        {"a": 1, "b": "x", "c": 0},
        {"a": 1, "b": "y", "c": 0},
        {"a": 2, "b": "x", "c": 0},
        {"a": 2, "b": "y", "c": 0},
    ]


def test_get_tuner_context_outside_a_trial_says_where_it_works() -> None:
    with pytest.raises(RuntimeError, match="only available inside the train_func"):
        tune.get_tuner_context()


def test_the_reference_spellings_and_bayes_opt_are_importable_from_the_tune_module() -> None:
    assert tune.uniform(0.01, 0.1) == tune.Uniform(0.01, 0.1)
    assert tune.loguniform(0.01, 0.1) == tune.LogUniform(0.01, 0.1)
    assert tune.randint(1, 5) == tune.RandInt(1, 5)
    assert isinstance(tune.search.BayesOpt(utility_kwargs={"kind": "ucb"}), tune.SearchAlgorithm)
    assert BayesOpt.modules == ("optuna",)

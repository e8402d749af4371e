"""The tuner on a real 2-node local pool (2 CPUs a node), with Ray Tune running the trials.

One random search of 12 XGBoost trials runs from this process (submitted as a job), shared by the
tests that read it; the grid, BayesOpt and ASHA searches run inside one job, as a user's job
would call the tuner."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shoal
from pool_helpers import pool_in_new_home, run_python
from shoal import tune
from shoal.data import DataConnector
from shoal.jobs import remote
from shoal.tune.search import BayesOpt, GridSearch, RandomSearch

POOL = "TUNE2"
STAGE = "TUNES"

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("tune-home"), POOL, 2, cpus_per_node=2)


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    shoal.set_default_compute_pool(POOL)
    yield
    shoal.set_default_compute_pool(None)


def regression(rows: int = 2000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.random((rows, 3))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + 0.1 * rng.standard_normal(rows)
    return pd.DataFrame(x, columns=["A", "B", "C"]).assign(Y=y)


def xgboost_trial() -> None:
    import xgboost

    context = tune.get_tuner_context()
    params = context.get_hyper_params()
    data = context.get_dataset_map()
    train, test = data["train"].to_pandas(), data["test"].to_pandas()
    model = xgboost.XGBRegressor(
        n_estimators=params["n_estimators"],
        max_depth=params["max_depth"],
        learning_rate=params["learning_rate"],
        n_jobs=1,
    )
    model.fit(train[["A", "B", "C"]], train["Y"])
    rmse = float(np.sqrt(np.mean((model.predict(test[["A", "B", "C"]]) - test["Y"]) ** 2)))
    print(f"rmse={rmse:.4f}")
    context.report({"rmse": rmse}, model=model)


@pytest.fixture(scope="module")
def random_search(home: Path) -> tune.TunerResults:
    """12 random XGBoost trials, at most 2 at once, started from this (plain) process."""
    import os

    os.environ["SHOAL_HOME"] = str(home)
    shoal.set_default_compute_pool(POOL)
    frame = regression()
    space = {
        "n_estimators": tune.randint(10, 80),
        "max_depth": tune.randint(1, 7),
        "learning_rate": tune.loguniform(0.01, 0.5),
    }
    config = tune.TunerConfig(
        metric="rmse",
        mode="min",
        search_alg=RandomSearch(random_state=0),
        num_trials=12,
        max_concurrent_trials=2,
    )
    data = {
        "train": DataConnector.from_dataframe(frame[:1500]),
        "test": DataConnector.from_dataframe(frame[1500:].reset_index(drop=True)),
    }
    return tune.Tuner(xgboost_trial, space, config).run(data, run_id="random12", stage_name=STAGE)


def test_a_random_search_finds_better_parameters_than_its_worst_and_best_result_is_its_best_row(
    random_search: tune.TunerResults,
) -> None:
    frame = random_search.results
    assert len(frame) == 12
    assert set(frame["status"]) == {"DONE"}
    assert frame["trial_id"].is_unique
    assert frame["rmse"].min() < frame["rmse"].max()
    best = random_search.best_result
    assert len(best) == 1
    assert best.iloc[0].to_dict() == frame.loc[frame["rmse"].idxmin()].to_dict()
    for name in ("n_estimators", "max_depth"):
        values = frame[f"config/{name}"]
        assert values.nunique() > 1, f"{name} was drawn, not fixed"
    assert frame["config/learning_rate"].between(0.01, 0.5).all()
    test = regression()[1500:]
    predicted = random_search.best_model.predict(test[["A", "B", "C"]])
    rmse = float(np.sqrt(np.mean((predicted - test["Y"]) ** 2)))
    assert rmse == pytest.approx(best.iloc[0]["rmse"], rel=1e-5), "best_model is the best trial's model"
    trial = str(best.iloc[0]["trial_id"])
    assert f"rmse={best.iloc[0]['rmse']:.4f}" in random_search.get_log(trial)
    assert frame["node_id"].nunique() == 2, "the trials ran on both nodes"


def overlap(starts: list[float], ends: list[float]) -> int:
    """The most intervals open at any one moment."""
    events = sorted([(t, 1) for t in starts] + [(t, -1) for t in ends], key=lambda e: (e[0], e[1]))
    most = running = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_max_concurrent_trials_is_respected_in_the_trials_recorded_times(
    random_search: tune.TunerResults,
) -> None:
    frame = random_search.results
    # 4 CPUs hold 4 one-CPU trials at once; the config allows 2
    assert overlap(list(frame["started_at"]), list(frame["ended_at"])) == 2


def test_results_are_read_back_from_a_fresh_process(random_search: tune.TunerResults, home: Path) -> None:
    code = (
        "import json\n"
        "from shoal.tune import TunerResults\n"
        f"r = TunerResults.restore_from('random12', {STAGE!r})\n"
        "print(json.dumps({'best': r.best_trial_id, 'rows': len(r.results), 'status': r.status,\n"
        "  'model': type(r.best_model).__name__, 'rmse': float(r.best_result['rmse'][0])}))\n"
    )
    seen = json.loads(run_python(code, home).strip().splitlines()[-1])
    assert seen == {
        "best": random_search.best_trial_id,
        "rows": 12,
        "status": "DONE",
        "model": "XGBRegressor",
        "rmse": float(random_search.best_result["rmse"][0]),
    }
    shown = run_python(
        "from shoal.cli import main\nmain(['tune', 'show', 'random12', '--stage-name', 'TUNES'])",
        home,
    )
    assert shown.startswith("run random12: DONE, 12 trial(s) (12 done, 0 failed, 0 stopped); rmse (min)")
    assert sum(1 for line in shown.splitlines() if line.startswith("*")) == 1


def grid_trial() -> None:
    context = tune.get_tuner_context()
    params = context.get_hyper_params()
    if params["a"] == 2 and params["b"] == "y":
        raise ValueError("a=2, b=y is broken")
    context.report({"score": params["a"] * (2 if params["b"] == "y" else 1)})


def bayes_trial() -> None:
    context = tune.get_tuner_context()
    x = context.get_hyper_params()["x"]
    context.report({"loss": (x - 0.3) ** 2})


def epochs_trial() -> None:
    context = tune.get_tuner_context()
    level = context.get_hyper_params()["level"]
    for epoch in range(8):
        context.report({"loss": level + 1.0 / (epoch + 1)})


def estimator_trial() -> None:
    from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig

    context = tune.get_tuner_context()
    estimator = XGBEstimator(
        n_estimators=context.get_hyper_params()["rounds"],
        params={"max_depth": 3},
        scaling_config=XGBScalingConfig(num_workers=2, num_cpu_per_worker=1),
    )
    booster = estimator.fit(context.get_dataset_map()["train"], input_cols=["A", "B", "C"], label_col="Y")
    context.report({"rmse": estimator.get_eval_results()["train"]["rmse"][-1]}, model=booster)


def searches_inside_a_job(frame: pd.DataFrame) -> dict[str, Any]:
    """In a job: a grid with a failing point, BayesOpt, ASHA, and trials that train with a
    distributed estimator."""
    grid = tune.Tuner(
        grid_trial, {"a": [1, 2, 3], "b": ["x", "y"]}, tune.TunerConfig("score", "max", GridSearch())
    ).run(run_id="grid", stage_name=STAGE)
    bayes = tune.Tuner(
        bayes_trial,
        {"x": tune.uniform(0, 1)},
        tune.TunerConfig("loss", "min", BayesOpt(random_state=0), num_trials=6, max_concurrent_trials=2),
    ).run(run_id="bayes", stage_name=STAGE)
    asha = tune.Tuner(
        epochs_trial,
        {"level": [0.0, 1.0, 2.0, 3.0]},
        tune.TunerConfig(
            "loss",
            "min",
            GridSearch(),
            max_concurrent_trials=1,
            early_stopping=tune.ASHA(max_t=8, grace_period=1, reduction_factor=2),
        ),
    ).run(run_id="asha", stage_name=STAGE)
    estimator = tune.Tuner(
        estimator_trial,
        {"rounds": [5, 20]},
        tune.TunerConfig("rmse", "min", GridSearch(), max_concurrent_trials=1),
    ).run({"train": DataConnector.from_dataframe(frame)}, run_id="estimator", stage_name=STAGE)
    return {
        name: {
            "rows": results.results.drop(columns=["error", "node_id"]).to_dict("records"),
            "errors": list(results.results["error"]),
            "best": results.best_trial_id,
            "model": type(results.best_model).__name__,
        }
        for name, results in {"grid": grid, "bayes": bayes, "asha": asha, "estimator": estimator}.items()
    }


@pytest.fixture(scope="module")
def in_a_job(home: Path) -> dict[str, Any]:
    job = remote(POOL, stage_name="tune_jobs", target_instances=2)(searches_inside_a_job)(regression(600))
    return job.result(timeout=400)  # type: ignore[no-any-return]


def test_a_grid_search_inside_a_job_covers_every_point_once_and_a_failing_trial_leaves_the_others(
    in_a_job: dict[str, Any],
) -> None:
    grid = in_a_job["grid"]
    points = [(row["config/a"], row["config/b"]) for row in grid["rows"]]
    assert sorted(points) == sorted((a, b) for a in (1, 2, 3) for b in ("x", "y"))
    statuses = {(row["config/a"], row["config/b"]): row["status"] for row in grid["rows"]}
    assert statuses.pop((2, "y")) == "FAILED"
    assert set(statuses.values()) == {"DONE"}
    (error,) = [e for e in grid["errors"] if e]
    assert "ValueError: a=2, b=y is broken" in error
    best = next(row for row in grid["rows"] if row["trial_id"] == grid["best"])
    assert (best["config/a"], best["config/b"], best["score"]) == (3, "y", 6)


def test_bayes_opt_runs_its_trials_within_the_bounds(in_a_job: dict[str, Any]) -> None:
    rows = in_a_job["bayes"]["rows"]
    assert len(rows) == 6
    assert {r["status"] for r in rows} == {"DONE"}
    xs = [r["config/x"] for r in rows]
    assert all(0 <= x < 1 for x in xs)
    assert len(set(xs)) == 6
    best = next(r for r in rows if r["trial_id"] == in_a_job["bayes"]["best"])
    assert best["loss"] == min(r["loss"] for r in rows)
    assert in_a_job["bayes"]["model"] == "NoneType"  # reported without a model


def test_asha_stops_the_trials_that_fall_behind(in_a_job: dict[str, Any]) -> None:
    rows = {r["config/level"]: r for r in in_a_job["asha"]["rows"]}
    assert rows[0.0]["status"] == "DONE"
    assert rows[0.0]["loss"] == pytest.approx(0.125)
    stopped = [level for level, r in rows.items() if r["status"] == "STOPPED"]
    assert stopped, f"ASHA stopped none of {rows}"
    assert all(rows[level]["loss"] > 1.0 for level in stopped), "each stopped with what it had reported"


def test_a_trial_can_train_with_a_distributed_estimator(in_a_job: dict[str, Any]) -> None:
    result = in_a_job["estimator"]
    rows = {r["config/rounds"]: r for r in result["rows"]}
    assert {r["status"] for r in rows.values()} == {"DONE"}
    assert rows[20]["rmse"] < rows[5]["rmse"]
    assert result["best"] == rows[20]["trial_id"]
    assert result["model"] == "Booster"

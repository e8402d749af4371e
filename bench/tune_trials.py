"""Benchmark: 16 trials through shoal's Tuner next to the same 16 trials through Ray Tune used
directly (from a plain driver, and inside a shoal job), on the same 2-node local pool (2 CPUs per
node), in one run.

    .venv/bin/python bench/tune_trials.py [--repeats 3] [--rows 100000] [--rounds 100]

Each trial trains XGBoost (``xgboost.train``, 1 thread, ``--rounds`` rounds, hist) on the same
``--rows`` x 10 synthetic regression rows with one point of a 4 x 4 grid (``max_depth`` x
``eta``), scores it on held-out rows, and hands back its RMSE and its booster:

* shoal: ``shoal.tune.Tuner(...).run(dataset_map=...)`` from this process: the search is
  submitted as a job on the pool, the rows travel as a DataConnector, every trial's record, log
  and booster go to the run's stage, and the results come back as ``TunerResults``; the time
  ends when ``best_model`` is loaded;
* Ray Tune: this process joins the pool's Ray cluster and runs ``ray.tune.Tuner`` with the same
  trainable work, the rows through ``tune.with_parameters``, one CPU a trial, actors reused, and
  the booster in a checkpoint; the time ends when the best result's booster is loaded;
* Ray Tune in a shoal job: the same ``ray.tune.Tuner`` call, made inside a job submitted to the
  pool (``shoal.jobs.remote``), timed from the submit to the job's result: what shoal's tuner
  costs beyond Ray Tune where both run in the same place.

Both use Ray Tune's basic variant generator with all 16 points and as many trials at once as
the 4 CPUs hold. The repeats alternate (Ray Tune, shoal, Ray Tune, shoal, ...) and the ratio
is of the medians. Each line also shows the fixed cost: from the call (``run`` / ``fit``) to
the first trial's start, which for shoal includes submitting and starting the tuning job and
importing Ray Tune there. The pool is readied by one empty job first. Runs in its own temporary
SHOAL_HOME and stops everything it started. Target (issue 36): shoal / Ray Tune <= 1.2x.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

POOL = "BENCHTUNE"
DEPTHS = [2, 4, 6, 8]
ETAS = [0.03, 0.1, 0.2, 0.3]


def make_rows(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    x = rng.random((rows, 10))
    y = np.sin(6 * x[:, 0]) + x[:, 1] ** 2 + x[:, 2] * x[:, 3] + 0.1 * rng.standard_normal(rows)
    return pd.DataFrame(x, columns=[f"F{i}" for i in range(10)]).assign(Y=y)


def fit_and_score(frame: pd.DataFrame, params: dict[str, Any], rounds: int) -> tuple[float, Any]:
    """The trial's work, the same in both contenders: train on 80%, RMSE on the rest."""
    import xgboost

    cut = int(len(frame) * 0.8)
    names = [c for c in frame.columns if c != "Y"]
    train = xgboost.DMatrix(frame[names][:cut], label=frame["Y"][:cut])
    booster = xgboost.train(
        {"max_depth": params["max_depth"], "eta": params["eta"], "nthread": 1, "tree_method": "hist"},
        train,
        num_boost_round=rounds,
    )
    predicted = booster.predict(xgboost.DMatrix(frame[names][cut:]))
    return float(np.sqrt(np.mean((predicted - frame["Y"][cut:].to_numpy()) ** 2))), booster


def shoal_trial() -> None:
    from shoal import tune

    context = tune.get_tuner_context()
    frame = context.get_dataset_map()["rows"].to_pandas()
    params = context.get_hyper_params()
    rmse, booster = fit_and_score(frame, params, params["rounds"])
    context.report({"rmse": rmse}, model=booster)


def run_shoal(frame: pd.DataFrame, rounds: int, run_id: str) -> tuple[float, float, float]:
    from shoal import tune
    from shoal.data import DataConnector
    from shoal.tune.search import GridSearch

    called = time.time()
    started = time.monotonic()
    results = tune.Tuner(
        shoal_trial,
        {"max_depth": DEPTHS, "eta": ETAS, "rounds": rounds},
        tune.TunerConfig(metric="rmse", mode="min", search_alg=GridSearch()),
    ).run({"rows": DataConnector.from_dataframe(frame)}, run_id=run_id, stage_name="bench_tune")
    results.best_model  # noqa: B018 - loading it is part of the time
    seconds = time.monotonic() - started
    assert len(results.results) == 16, results.results
    assert set(results.results["status"]) == {"DONE"}, results.results
    first = float(results.results["started_at"].min()) - called
    return seconds, float(results.best_result["rmse"].iloc[0]), first


def ray_trial(config: dict[str, Any], frame: pd.DataFrame) -> None:
    from ray import tune

    started = time.time()
    rmse, booster = fit_and_score(frame, config, config["rounds"])
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "model.pkl").write_bytes(pickle.dumps(booster))
        tune.report({"rmse": rmse, "started": started}, checkpoint=tune.Checkpoint.from_directory(folder))


def run_ray_tune(frame: pd.DataFrame, rounds: int, storage: Path, name: str) -> tuple[float, float, float]:
    from ray import tune

    called = time.time()
    started = time.monotonic()
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(ray_trial, frame=frame), {"cpu": 1}),
        param_space={"max_depth": tune.grid_search(DEPTHS), "eta": tune.grid_search(ETAS), "rounds": rounds},
        tune_config=tune.TuneConfig(metric="rmse", mode="min", reuse_actors=True),
        run_config=tune.RunConfig(name=name, storage_path=str(storage), verbose=0),
    )
    grid = tuner.fit()
    best = grid.get_best_result()
    with best.checkpoint.as_directory() as folder:
        pickle.loads((Path(folder) / "model.pkl").read_bytes())
    seconds = time.monotonic() - started
    assert len(grid) == 16, grid
    assert not grid.errors, grid.errors
    first = min(result.metrics["started"] for result in grid) - called
    return seconds, float(best.metrics["rmse"]), first


def run_ray_tune_in_a_job(
    pool: str, frame: pd.DataFrame, rounds: int, name: str
) -> tuple[float, float, float]:
    from shoal.jobs import remote

    called = time.time()
    started = time.monotonic()
    job = remote(pool, stage_name="bench_jobs", target_instances=2)(_ray_tune_job)(frame, rounds, name)
    error, first_at = job.result(timeout=600)
    return time.monotonic() - started, error, first_at - called


def _ray_tune_job(frame: pd.DataFrame, rounds: int, name: str) -> tuple[float, float]:
    """In the job: Ray Tune on the job's cluster; the best RMSE and the first trial's start time."""
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="bench-tune-"))
    try:
        fit_called = time.time()
        _, error, first = run_ray_tune(frame, rounds, folder, name)
        return error, fit_called + first
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _warm_up() -> int:
    return 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=100)
    options = parser.parse_args()
    frame = make_rows(options.rows)
    times: dict[str, list[float]] = {"ray": [], "ray_job": [], "shoal": []}
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        import shoal
        from shoal.jobs import JobStatus, remote
        from shoal.pools.connect import connect

        began = time.monotonic()
        shoal.create_compute_pool(POOL, min_nodes=2, max_nodes=2, cpus_per_node=2)
        try:
            shoal.set_default_compute_pool(POOL)
            warm_up = remote(POOL, stage_name="bench_jobs")(_warm_up)()
            if warm_up.wait(timeout=300) != JobStatus.DONE:
                raise SystemExit(f"the warm-up job on the pool did not end DONE: {warm_up.status}")
            print(f"2-node pool (2 CPUs a node) ready in {time.monotonic() - began:.1f} s", flush=True)
            connect(shoal.describe_compute_pool(POOL)["address"])
            storage = Path(tmp) / "ray_results"
            for repeat in range(options.repeats):
                seconds, error, first = run_ray_tune(frame, options.rounds, storage, f"ray{repeat}")
                times["ray"].append(seconds)
                print(
                    f"Ray Tune, repeat {repeat + 1}: {seconds:.2f} s (first trial after {first:.2f} s; "
                    f"best RMSE {error:.4f})",
                    flush=True,
                )
                seconds, error, first = run_ray_tune_in_a_job(POOL, frame, options.rounds, f"rayjob{repeat}")
                times["ray_job"].append(seconds)
                print(
                    f"Ray Tune in a shoal job, repeat {repeat + 1}: {seconds:.2f} s (first trial after "
                    f"{first:.2f} s; best RMSE {error:.4f})",
                    flush=True,
                )
                seconds, error, first = run_shoal(frame, options.rounds, f"shoal{repeat}")
                times["shoal"].append(seconds)
                print(
                    f"shoal Tuner, repeat {repeat + 1}: {seconds:.2f} s (first trial after {first:.2f} s; "
                    f"best RMSE {error:.4f})",
                    flush=True,
                )
        finally:
            shoal.drop_compute_pool(POOL)
    ray_median, shoal_median = statistics.median(times["ray"]), statistics.median(times["shoal"])
    job_median = statistics.median(times["ray_job"])
    print()
    print(f"16 trials ({options.rows} rows x 10, {options.rounds} rounds each), median of {options.repeats}:")
    print(f"  Ray Tune used directly  {ray_median:7.2f} s")
    print(f"  Ray Tune in a shoal job {job_median:7.2f} s")
    print(f"  shoal Tuner             {shoal_median:7.2f} s")
    print(f"  shoal / Ray Tune        {shoal_median / ray_median:7.2f}x   (target <= 1.2x)")
    print(f"  shoal / Ray Tune in a shoal job {shoal_median / job_median:5.2f}x")


if __name__ == "__main__":
    main()

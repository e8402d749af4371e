"""Benchmark: many-model training of 5,000 tiny models (a scikit-learn ``LinearRegression`` on 50
rows each), every figure next to its anchors measured in the same run, on the same 3-node local
pool:

- a plain loop in one process (group, fit, save ``model.pkl`` per model);
- raw Ray tasks, one per model, each group through Ray's object store, saving the same file
  into the same layout (``<run>/<key>/model.pkl``);
- a plain DPF whose function fits and saves the model by hand (what many-model training adds
  on top of DPF, on its own).

    .venv/bin/python bench/mmt_models.py [--models 5000] [--rows 50]

Both Ray sides are measured warm: after a small run that started the pool's executors and the
anchor's Ray workers, and with the pool idle for a few seconds before each measured run. Prints
seconds, milliseconds per model and ratios; runs in its own temporary SHOAL_HOME and stops what
it started. Timings are for reading, not for tests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

POOL = "MMTBENCH"
STAGE = "mmtbench"
IDLE_S = 3.0


def frame_of(models: int, rows: int) -> Any:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(5)
    x = rng.random(models * rows)
    key = np.repeat(np.arange(models), rows)
    return pd.DataFrame({"key": key, "x": x, "y": (key % 7 + 1) * x + rng.normal(0, 0.01, models * rows)})


def fit(frame: Any) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression().fit(frame[["x"]].to_numpy(), frame["y"].to_numpy())


def train(data: Any, context: Any) -> Any:
    """The many-model training function: fit and return (MMT saves it)."""
    return fit(data.to_pandas())


def train_and_save(data: Any, context: Any) -> None:
    """The plain DPF function: fit and save the model by hand, as MMT does."""
    import cloudpickle

    model = fit(data.to_pandas())
    context.upload_to_stage(
        model, "model.pkl", write_function=lambda m, p: Path(p).write_bytes(cloudpickle.dumps(m))
    )


def save(root: str, key: Any, model: Any) -> None:
    import cloudpickle

    folder = os.path.join(root, str(key))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "model.pkl"), "wb") as handle:
        handle.write(cloudpickle.dumps(model))


def plain_loop(frame: Any, root: str) -> float:
    started = time.monotonic()
    for key, group in frame.groupby("key"):
        save(root, key, fit(group))
    return time.monotonic() - started


def raw_ray_tasks(frame: Any, root: str) -> float:
    import shoal
    from shoal.pools.connect import connect

    ray = connect(shoal.describe_compute_pool(POOL)["address"])

    @ray.remote(num_cpus=1)
    def task(key: Any, group: Any) -> None:
        save(root, key, fit(group))

    started = time.monotonic()  # splitting the frame counts, as the runs' partitioning does
    ray.get([task.remote(key, group) for key, group in frame.groupby("key")])
    return time.monotonic() - started


def timed_run(runner: Any, frame: Any, run_id: str) -> float:
    """Seconds from ``run()`` to SUCCESS of a DPF or ManyModelTraining ``runner`` over ``frame``."""
    started = time.monotonic()
    run = runner.run(partition_by="key", dataframe=frame, run_id=run_id)
    status = run.wait(show_progress=False)
    assert status == "SUCCESS", (status, run.message)
    return time.monotonic() - started


def mmt_run(frame: Any, run_id: str) -> float:
    from shoal.mmt import ManyModelTraining

    return timed_run(ManyModelTraining(train, STAGE, compute_pool=POOL), frame, run_id)


def dpf_run(frame: Any, run_id: str) -> float:
    from shoal.dpf import DPF

    return timed_run(DPF(train_and_save, STAGE, compute_pool=POOL), frame, run_id)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=50)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shoal-bench-") as tmp:
        os.environ["SHOAL_HOME"] = str(Path(tmp) / "home")
        import shoal
        from shoal.mmt import ManyModelRun
        from shoal.stages import create_stage

        stage = create_stage(STAGE)
        root = stage.backend.local_path("")
        assert root is not None
        frame, warm = frame_of(options.models, options.rows), frame_of(30, options.rows)
        shoal.create_compute_pool(POOL, min_nodes=3, max_nodes=3)
        try:
            loop_s = plain_loop(frame, os.path.join(root, "loop"))
            mmt_run(warm, "warm_mmt")
            raw_ray_tasks(warm, os.path.join(root, "warm_raw"))
            time.sleep(IDLE_S)
            mmt_s = mmt_run(frame, "mmt")
            time.sleep(IDLE_S)
            raw_s = raw_ray_tasks(frame, os.path.join(root, "raw"))
            time.sleep(IDLE_S)
            dpf_s = dpf_run(frame, "dpf")
            run = ManyModelRun.restore_from("mmt", STAGE)
            assert len(run.models()) == options.models
            sample = run.get_model(options.models - 1)
            assert abs(float(sample.coef_[0]) - ((options.models - 1) % 7 + 1)) < 0.05
        finally:
            shoal.drop_compute_pool(POOL)
    n = options.models
    print(
        f"{n} models (LinearRegression on {options.rows} rows each) on a 3-node local pool, submit to SUCCESS"
    )
    for label, seconds in (
        ("shoal ManyModelTraining", mmt_s),
        ("raw Ray tasks, one per model", raw_s),
        ("plain loop in one process", loop_s),
        ("plain DPF saving the model by hand", dpf_s),
    ):
        print(f"   {label:<38}{seconds:8.2f} s  {1000 * seconds / n:7.2f} ms per model")
    print(f"   ratio MMT / raw Ray tasks:            {mmt_s / raw_s:8.2f}x  (target <= 1.5x)")
    print(f"   ratio MMT / plain loop:               {mmt_s / loop_s:8.2f}x")
    print(f"   ratio MMT / plain DPF (MMT's own cost): {mmt_s / dpf_s:6.2f}x")


if __name__ == "__main__":
    main()

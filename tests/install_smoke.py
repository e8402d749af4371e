"""Smoke run of an installed shoal, from a fresh venv (not a test module: pytest does not collect it).

    python tests/install_smoke.py --without-xgboost   # the core install: no extra
    python tests/install_smoke.py --with-xgboost      # the wheel installed with shoal[xgboost]

On a 1-node local pool (``--with-xgboost``: 2 nodes), it runs one job and one distributed
partition function, then either fits XGBoost on two ranks or checks that the XGBoost estimator
fails before anything is started, naming the extra to install. Prints one JSON object with what it
saw on the last line of stdout; exits 1 with the reason on stderr when anything is not as expected.
Uses SHOAL_HOME as set by the caller (a temporary folder). ``tests/test_packaging.py`` runs it in a
core-only venv; ``.ci/smoke`` on Python 3.10 and 3.13 with the ``xgboost`` extra.

Runs on the driver (this process); the pool's Ray cluster runs in this venv's interpreter.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any

POOL = "SMOKE"


def add(a: int, b: int) -> dict[str, Any]:
    """The job's payload (instance 0)."""
    import sys

    return {"sum": a + b, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}


def count_rows(data: Any, context: Any) -> None:
    """The per-partition function: writes the partition's row count and sum as an artifact."""
    frame = data.to_pandas()
    context.upload_to_stage(
        frame.agg({"V": ["count", "sum"]}).T.reset_index(drop=True),
        "counts.parquet",
        write_function=lambda df, path: df.to_parquet(path),
    )


def xgboost_error() -> tuple[str, list[str]]:
    """The XGBoost estimator's error without xgboost, and what SHOAL_HOME holds afterwards."""
    import pandas as pd

    from shoal.errors import MissingExtraError
    from shoal.plugins.xgboost import XGBEstimator

    frame = pd.DataFrame({"F": [1.0, 2.0, 3.0], "Y": [0.0, 1.0, 0.0]})
    try:
        XGBEstimator(n_estimators=2).fit(frame, input_cols=["F"], label_col="Y")
    except MissingExtraError as error:
        return str(error), sorted(os.listdir(os.environ["SHOAL_HOME"]))
    raise SystemExit("XGBEstimator.fit did not fail without xgboost")


def job_and_dpf(seen: dict[str, Any]) -> None:
    from shoal.data import DataConnector
    from shoal.data.warehouse import connect_warehouse
    from shoal.dpf import DPF
    from shoal.jobs import remote

    job = remote(POOL, stage_name="smoke", target_instances=1)(add)(2, 3)
    seen["job"] = job.result(timeout=300)
    seen["job_status"] = job.status.value
    with connect_warehouse() as warehouse:
        warehouse.execute("CREATE OR REPLACE TABLE rows AS SELECT i % 3 AS K, i AS V FROM range(30) t(i)")
    run = DPF(count_rows, "smoke", compute_pool=POOL).run(
        partition_by="K", dataframe=DataConnector.from_sql("SELECT * FROM rows"), run_id="smoke"
    )
    seen["dpf_status"] = run.wait(timeout=300, show_progress=False).value
    frame = run.query_artifacts("counts.parquet").order("partition_id").df()
    seen["dpf_counts"] = {str(k): int(c) for k, c in zip(frame["partition_id"], frame["count"], strict=True)}


def two_rank_fit(seen: dict[str, Any]) -> None:
    import numpy as np
    import pandas as pd

    from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig

    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"A": rng.normal(size=2000), "B": rng.normal(size=2000)})
    frame["Y"] = 3 * frame["A"] - frame["B"]
    estimator = XGBEstimator(
        n_estimators=20,
        params={"max_depth": 3},
        scaling_config=XGBScalingConfig(num_workers=2),
        compute_pool=POOL,
    )
    booster = estimator.fit(frame, input_cols=["A", "B"], label_col="Y")
    predicted = np.asarray(estimator.predict(frame))
    seen["fit_rounds"] = int(booster.num_boosted_rounds())
    seen["fit_rmse"] = float(np.sqrt(np.mean((predicted - frame["Y"].to_numpy()) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser()
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--with-xgboost", action="store_true")
    mode.add_argument("--without-xgboost", action="store_true")
    options = parser.parse_args()

    import shoal

    seen: dict[str, Any] = {
        "shoal": shoal.__version__,
        "xgboost_installed": bool(importlib.util.find_spec("xgboost")),
    }
    if options.without_xgboost:
        seen["xgboost_error"], seen["home_after_error"] = xgboost_error()
    nodes = 2 if options.with_xgboost else 1
    shoal.create_compute_pool(POOL, min_nodes=nodes, max_nodes=nodes)
    try:
        job_and_dpf(seen)
        if options.with_xgboost:
            two_rank_fit(seen)
    finally:
        shoal.drop_compute_pool(POOL)
    print(json.dumps(seen))
    problems = []
    if seen["job"] != {"sum": 5, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}:
        problems.append(f"the job returned {seen['job']}")
    if (seen["job_status"], seen["dpf_status"]) != ("DONE", "SUCCESS"):
        problems.append(f"job {seen['job_status']}, DPF run {seen['dpf_status']}")
    if seen["dpf_counts"] != {"0": 10, "1": 10, "2": 10}:
        problems.append(f"the DPF partitions counted {seen['dpf_counts']} rows")
    # y = 3a - b has a standard deviation of about 3.2; 20 rounds of depth 3 fit it to about 0.2
    if options.with_xgboost and (seen["fit_rounds"] != 20 or seen["fit_rmse"] > 0.5):
        problems.append(f"the two-rank fit gave {seen['fit_rounds']} rounds, RMSE {seen['fit_rmse']:.3f}")
    if options.without_xgboost and "pip install 'shoal[xgboost]'" not in seen["xgboost_error"]:
        problems.append(f"the estimator's error does not name the extra: {seen['xgboost_error']}")
    if problems:
        print("install smoke: " + "; ".join(problems), file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()

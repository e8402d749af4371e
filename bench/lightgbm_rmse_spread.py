"""How far LightGBM's own test RMSE moves on ``bench/train_gbdt.py``'s data, in one process.

    .venv/bin/python bench/lightgbm_rmse_spread.py [--rows 1000000] [--rounds 100]

``train_gbdt.py`` compares the test RMSE of shoal's data-parallel LightGBM with one process's.
This prints what that comparison is measured against: one process (2 threads, the same
parameters) trained on all the training rows, read after 10, 30, 60 and every ``--rounds``
rounds; on each half of the rows; and with two parameters that should change little
(``max_bin=1023``, ``min_data_in_leaf=100``). The anchor is the first line's final RMSE; each
other line prints its ratio to it. No Ray, no shoal.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from train_gbdt import LABEL, lgb_params, make_data, rmse


def main() -> None:
    import lightgbm

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    options = parser.parse_args()
    train, test, names = make_data(options.rows)
    features, label = train[names].to_numpy(), train[LABEL].to_numpy()
    half = len(train) // 2
    runs: list[tuple[str, dict[str, Any], slice]] = [
        ("all rows", {}, slice(None)),
        ("first half of the rows", {}, slice(None, half)),
        ("second half of the rows", {}, slice(half, None)),
        ("all rows, max_bin=1023", {"max_bin": 1023}, slice(None)),
        ("all rows, min_data_in_leaf=100", {"min_data_in_leaf": 100}, slice(None)),
    ]
    checkpoints = sorted({10, 30, 60, options.rounds} - {r for r in (10, 30, 60) if r > options.rounds})
    print(f"{len(train):,} training rows, {len(test):,} test rows; test RMSE after {checkpoints} rounds")
    anchor = 0.0
    for title, extra, rows in runs:
        started = time.monotonic()
        booster = lightgbm.train(
            {**lgb_params(2), **extra},
            lightgbm.Dataset(features[rows], label=label[rows]),
            num_boost_round=options.rounds,
        )
        held_out = test[names].to_numpy()
        curve = [rmse(booster.predict(held_out, num_iteration=k), test[LABEL]) for k in checkpoints]
        anchor = anchor or curve[-1]
        print(
            f"{title:<34} "
            + "  ".join(f"{value:.4f}" for value in curve)
            + f"   final / all rows {curve[-1] / anchor:.3f}   ({time.monotonic() - started:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()

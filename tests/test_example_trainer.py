"""The worked example trainer plugin (examples/shoal-histgb-trainer), installed as its own
distribution, is found through the ``shoal`` entry point and trains on a real 2-node local pool.

The distribution goes into a target folder that is put on ``sys.path`` (this process's plugin
manager) and on ``PYTHONPATH`` *before* the pool starts: the pool's Ray nodes inherit the
environment of the process that creates them, and so do their workers, which rebuild the
driver's plugin manager and import the plugin from there. Nothing registers it by hand.

Quality: the bagging ensemble's held-out RMSE is at most ``QUALITY_TOLERANCE`` times that of one
``HistGradientBoostingRegressor`` fitted in this process on all the rows.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import shoal
import shoal.train
from conftest import REPO_ROOT
from plugin_helpers import pip_install_into
from pool_helpers import pool_processes
from shoal.errors import ConfigError

pytestmark = [pytest.mark.slow, pytest.mark.ray]

EXAMPLE = REPO_ROOT / "examples" / "shoal-histgb-trainer"
DISTRIBUTION = "shoal-histgb-trainer"
POOL = "HISTGB2"
QUALITY_TOLERANCE = 1.15
FEATURES = ["X0", "X1", "X2"]
PARAMS = {"max_iter": 100, "learning_rate": 0.1, "random_state": 0}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """pip-install the example into a folder; make it visible here and to every child process."""
    target = tmp_path_factory.mktemp("histgb-site")
    pip_install_into(EXAMPLE, target)
    old_pythonpath = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(target), *([old_pythonpath] if old_pythonpath else [])])
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    if old_pythonpath is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old_pythonpath
    for name in [m for m in sys.modules if m == "shoal_histgb" or m.startswith("shoal_histgb.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


@pytest.fixture(scope="module")
def pool_home(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2-node local pool, started after PYTHONPATH holds the installed plugin."""
    home = tmp_path_factory.mktemp("histgb-home")
    os.environ["SHOAL_HOME"] = str(home)
    shoal.create_compute_pool(POOL, min_nodes=2, max_nodes=2)
    state = json.loads((home / "pools" / POOL / "state.json").read_text())
    yield home
    os.environ["SHOAL_HOME"] = str(home)
    shoal.drop_compute_pool(POOL)
    assert pool_processes(state["pool_id"]) == [], "dropping the pool must leave nothing running"


@pytest.fixture
def on_pool(pool_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(pool_home))


def regression(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["Y"] = 2 * x[:, 0] + np.sin(x[:, 1]) + rng.normal(scale=0.1, size=rows)
    return frame


def rmse(predicted: Any, frame: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - frame["Y"].to_numpy()) ** 2)))


TRAIN, TEST = regression(4000, seed=1), regression(1000, seed=2)


def test_example_trainer_is_listed_with_its_distribution(installed: Path) -> None:
    from shoal import hooks
    from shoal.plugin_manager import get_plugin_manager

    pm = get_plugin_manager()
    record = pm.record("histgb")
    assert record is not None, [r.name for r in pm.records()]
    assert (record.distribution, record.version, record.source, record.target) == (
        DISTRIBUTION,
        "0.1.0",
        "entrypoint",
        "shoal_histgb.plugin",
    )
    assert pm.hooks_of("histgb") == ["shoal_estimators"]
    spec = hooks.get_estimator("sklearn-histgb")  # by its alias
    assert (spec.name, spec.frameworks) == ("histgb", ("sklearn",))

    # The CLI, in a fresh process that sees the plugin only through PYTHONPATH, lists it too,
    # and loading every plugin does not import scikit-learn.
    env = {**os.environ, "PYTHONPATH": str(installed)}
    done = subprocess.run(
        [sys.executable, "-m", "shoal", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["histgb"]["distribution"] == DISTRIBUTION
    assert rows["histgb"]["contributes"] == {"estimators": ["histgb"]}
    code = (
        "import sys; from shoal import hooks; hooks.get_estimator('histgb'); "
        "print(sorted(m for m in ('sklearn', 'ray') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_bad_sklearn_parameters_fail_in_the_factory_with_a_clear_error(installed: Path) -> None:
    # Checked on the driver, before a job is submitted: the pool need not exist.
    with pytest.raises(ConfigError, match=r"unknown option 'max_iters'.*did you mean 'max_iter'"):
        shoal.train.fit("histgb", TRAIN, compute_pool=POOL, label_col="Y", max_iters=10)
    with pytest.raises(ConfigError, match=r"'learning_rate' parameter"):
        shoal.train.fit("histgb", TRAIN, compute_pool=POOL, label_col="Y", learning_rate="fast")
    with pytest.raises(ConfigError, match="needs label_col="):
        shoal.train.fit("histgb", TRAIN, compute_pool=POOL)
    with pytest.raises(ConfigError, match="task must be one of"):
        shoal.train.fit("histgb", TRAIN, compute_pool=POOL, label_col="Y", task="ranking")


@pytest.mark.usefixtures("on_pool")
def test_bagging_over_two_nodes_matches_a_single_process_model() -> None:
    from shoal_histgb import AveragingEnsemble
    from sklearn.ensemble import HistGradientBoostingRegressor

    ensemble = shoal.train.fit("histgb", TRAIN, compute_pool=POOL, label_col="Y", **PARAMS)

    assert isinstance(ensemble, AveragingEnsemble)
    assert len(ensemble.members) == 2  # one per worker: one worker on each of the 2 nodes
    assert all(isinstance(m, HistGradientBoostingRegressor) for m in ensemble.members)
    assert ensemble.input_cols == FEATURES
    assert all(m.max_iter == PARAMS["max_iter"] for m in ensemble.members)
    first, second = (m.predict(TEST[FEATURES]) for m in ensemble.members)
    assert not np.allclose(first, second), "each member must have been fitted on its own shard"

    single = HistGradientBoostingRegressor(**PARAMS).fit(TRAIN[FEATURES], TRAIN["Y"])
    single_rmse = rmse(single.predict(TEST[FEATURES]), TEST)
    ours = rmse(ensemble.predict(TEST), TEST)
    assert ours == pytest.approx(rmse(ensemble.predict(TEST[FEATURES].to_numpy()), TEST))
    assert ours <= single_rmse * QUALITY_TOLERANCE, (ours, single_rmse)


@pytest.mark.usefixtures("on_pool")
def test_classification_averages_the_members_probabilities() -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    frame = TRAIN.assign(LABEL=np.where(TRAIN["Y"] > 0, "up", "down")).drop(columns="Y")
    test = TEST.assign(LABEL=np.where(TEST["Y"] > 0, "up", "down"))
    ensemble = shoal.train.fit(
        "histgb", frame, compute_pool=POOL, label_col="LABEL", input_cols=["X0", "X1"], task="classification"
    )

    assert len(ensemble.members) == 2
    assert all(isinstance(m, HistGradientBoostingClassifier) for m in ensemble.members)
    assert list(ensemble.classes_) == ["down", "up"]
    proba = ensemble.predict_proba(test)
    assert proba.shape == (len(test), 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    accuracy = float(np.mean(ensemble.predict(test) == test["LABEL"].to_numpy()))
    single = HistGradientBoostingClassifier().fit(frame[["X0", "X1"]], frame["LABEL"])
    single_accuracy = float(np.mean(single.predict(test[["X0", "X1"]]) == test["LABEL"].to_numpy()))
    assert accuracy >= single_accuracy - 0.02, (accuracy, single_accuracy)


@pytest.mark.usefixtures("on_pool")
def test_the_third_party_trainer_trains_one_model_per_partition_through_the_ready_made_call() -> None:
    from shoal_histgb import AveragingEnsemble

    from shoal.dpf import RunStatus
    from shoal.mmt import ManyModelRun, ManyModelTraining

    frame = pd.concat(
        [regression(300, seed=10).assign(REGION="east"), regression(300, seed=11).assign(REGION="west")],
        ignore_index=True,
    )
    frame.loc[frame["REGION"] == "west", "Y"] *= -1  # a different relation per region
    trainer = ManyModelTraining.from_estimator(
        "histgb", "histgb_models", label_col="Y", input_cols=FEATURES, compute_pool=POOL, max_iter=30
    )
    run = trainer.run(partition_by="REGION", dataframe=frame, run_id="per_region")
    assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS, run.partition_details
    restored = ManyModelRun.restore_from("per_region", "histgb_models")
    east, west = restored.get_model("east"), restored.get_model("west")
    assert isinstance(east, AveragingEnsemble)
    assert len(east.members) == 1, "one rank per partition"
    assert east.members[0].max_iter == 30
    probe = TEST.head(50)
    assert rmse(east.predict(probe), probe) < 0.5
    assert rmse(west.predict(probe), probe.assign(Y=-probe["Y"])) < 0.5, "each region got its own model"
    assert set(restored.models()["serde"]) == {"pickle"}, "histgb declares no native serde"

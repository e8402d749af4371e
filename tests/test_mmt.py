"""Many-model training and inference on a real 2-node local pool (one pool for the module)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from pool_helpers import pool_in_new_home, run_python
from shoal.dpf import ExecutionOptions, PartitionStatus, RunStatus
from shoal.errors import ConfigError
from shoal.mmt import ManyModelInference, ManyModelRun, ManyModelTraining, XGBoostSerde
from shoal.stages import create_stage

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "MMT2"
STAGE = "models"


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("mmt-home"), POOL, 2)


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.setenv("SHOAL_COMPUTE_POOL", POOL)


def regions(keys: list[Any], rows: int = 40, seed: int = 3) -> pd.DataFrame:
    """y = slope * x + noise, with a different slope (its index + 1) per key."""
    rng = np.random.default_rng(seed)
    frames = []
    for slope, key in enumerate(keys, start=1):
        x = rng.random(rows)
        frames.append(
            pd.DataFrame({"REGION": [key] * rows, "X": x, "Y": slope * x + rng.normal(0, 0.01, rows)})
        )
    return pd.concat(frames, ignore_index=True)


class LineModel:
    """A model class of the test module: pickled by value, as a notebook's class would be."""

    def __init__(self, slope: float, intercept: float) -> None:
        self.slope, self.intercept = slope, intercept

    def predict(self, x: Any) -> Any:
        return self.slope * np.asarray(x) + self.intercept


def fit_line(data: Any, context: Any) -> LineModel:
    frame = data.to_pandas()
    slope, intercept = np.polyfit(frame["X"], frame["Y"], 1)
    model = LineModel(float(slope), float(intercept))
    model.rmse = float(np.sqrt(np.mean((model.predict(frame["X"]) - frame["Y"]) ** 2)))  # type: ignore[attr-defined]
    model.partition = context.partition_id  # type: ignore[attr-defined]
    print(f"fitted {context.partition_id}: slope {slope:.2f}")
    return model


@pytest.fixture(scope="module")
def string_run(home: Path) -> ManyModelRun:
    with pytest.MonkeyPatch.context() as patch:  # for this fixture only: later modules see nothing
        patch.setenv("SHOAL_HOME", str(home))
        patch.setenv("SHOAL_COMPUTE_POOL", POOL)
        run = ManyModelTraining(fit_line, STAGE).run(
            partition_by="REGION", dataframe=regions(["north", "south", "east"]), run_id="by_name"
        )
        assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS
    return run


def test_one_model_per_string_key_with_its_attributes(string_run: ManyModelRun) -> None:
    for slope, key in enumerate(["north", "south", "east"], start=1):
        model = string_run.get_model(key)
        assert isinstance(model, LineModel)
        assert model.slope == pytest.approx(slope, abs=0.05)
        assert model.partition == key, "ad-hoc attributes come back"
        assert 0 < model.rmse < 0.05
    models = string_run.models()
    assert sorted(models["partition_id"]) == ["east", "north", "south"]
    assert set(models["path"]) == {
        f"@{STAGE.upper()}/by_name/{k}/model.pkl" for k in ("north", "south", "east")
    }
    assert (models["size"] > 0).all()
    assert set(models["serde"]) == {"pickle"}
    assert "fitted north: slope" in string_run.partition_details["north"].logs


def test_integer_keys_and_every_key_partition_details_yields() -> None:
    run = ManyModelTraining(fit_line, STAGE).run(
        partition_by="REGION", dataframe=regions([10, 20]), run_id="by_number"
    )
    assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS
    for key in run.partition_details:
        assert run.get_model(key).partition == key
    assert run.get_model(10).slope == pytest.approx(1, abs=0.05)
    assert run.get_model("20").slope == pytest.approx(2, abs=0.05)
    with pytest.raises(KeyError, match=r"no partition 30; its partitions are: '10', '20'"):
        run.get_model(30)


def test_get_model_after_restore_from_in_a_fresh_process(string_run: ManyModelRun, home: Path) -> None:
    code = (
        "from shoal.mmt import ManyModelRun, ManyModelTraining\n"
        f"run = ManyModelRun.restore_from('by_name', {STAGE!r})\n"
        "again = ManyModelTraining.restore_from('by_name', '@' + " + repr(STAGE.upper()) + ")\n"
        "m = run.get_model('south')\n"
        "print(type(m).__name__, round(m.slope), m.partition, again.get_model('east').partition)\n"
    )
    assert run_python(code, home).split() == ["LineModel", "2", "south", "east"]


def test_restore_from_refuses_a_run_that_is_not_training(string_run: ManyModelRun) -> None:
    from shoal.dpf import DPF

    plain = DPF(lambda data, context: None, STAGE).run(
        partition_by="REGION", dataframe=regions(["a"]), run_id="plain_dpf"
    )
    plain.wait(timeout=300, show_progress=False)
    with pytest.raises(ValueError, match="not a many-model training run"):
        ManyModelRun.restore_from("plain_dpf", STAGE)


def fit_xgboost(data: Any, context: Any) -> Any:
    import xgboost

    frame = data.to_pandas()
    model = xgboost.XGBRegressor(n_estimators=10, max_depth=2).fit(frame[["X"]], frame["Y"])
    model.rows = len(frame)
    return model


def test_native_serde_models_load_without_pickle(monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    import xgboost

    run = ManyModelTraining(fit_xgboost, STAGE, serde=XGBoostSerde()).run(
        partition_by="REGION", dataframe=regions(["n", "s"]), run_id="native"
    )
    assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS
    monkeypatch.setattr(pickle, "load", None)  # reading a native model must not unpickle
    monkeypatch.setattr(pickle, "loads", None)
    restored = ManyModelRun.restore_from("native", STAGE)
    model = restored.get_model("s")
    assert isinstance(model, xgboost.XGBRegressor)
    assert model.rows == 40
    assert float(model.predict(np.array([[1.0]]))[0]) == pytest.approx(2.0, abs=0.35)
    assert set(restored.models()["serde"]) == {"xgboost"}
    assert restored.models()["path"].str.endswith("/model.json").all()


def score(data: Any, model: Any, context: Any) -> None:
    frame = data.to_pandas()
    frame["PREDICTION"] = model.predict(frame["X"])
    context.upload_to_stage(frame, "predictions.parquet", write_function=lambda df, path: df.to_parquet(path))


def test_inference_writes_predictions_for_every_partition(string_run: ManyModelRun) -> None:
    new = regions(["north", "south", "east"], rows=5, seed=11)
    run = ManyModelInference(score, STAGE, training_run_id="by_name").run(
        partition_by="REGION", dataframe=new, run_id="scores"
    )
    assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS
    predictions = run.query_artifacts("predictions.parquet").df()
    assert sorted(predictions["partition_id"].unique()) == ["east", "north", "south"]
    assert len(predictions) == 15
    error = (predictions["PREDICTION"] - predictions["Y"]).abs().max()
    assert error < 0.1, "each partition was scored with its own model"


def test_a_partition_without_a_model_fails_at_once_naming_it_and_the_run(string_run: ManyModelRun) -> None:
    new = regions(["north", "west"], rows=5)
    run = ManyModelInference(score, STAGE, training_run_id="by_name").run(
        partition_by="REGION", dataframe=new, run_id="scores_west"
    )
    assert run.wait(timeout=300, show_progress=False) == RunStatus.PARTIAL_FAILURE
    west = run.partition_details["west"]
    assert west.status == PartitionStatus.FAILED
    assert west.attempts == 1, "a missing model is not retried"
    assert "Partition 'west' has no model in training run 'by_name'" in (west.error or "")
    assert "PermanentPartitionError" in west.logs
    assert run.partition_details["north"].status == PartitionStatus.DONE


def test_inference_against_a_missing_training_run_fails_before_anything_runs(home: Path) -> None:
    create_stage(STAGE, exist_ok=True)  # the stage is there; the run is not
    with pytest.raises(ValueError, match=r"training_run_id 'nope'.*no run of that id"):
        ManyModelInference(score, STAGE, training_run_id="nope")
    assert not (home / "stages" / STAGE.upper() / "nope").exists()


def broken_fit(data: Any, context: Any) -> Any:
    raise ArithmeticError(f"cannot fit {context.partition_id}")


def test_a_failing_train_func_retries_then_fails_with_its_traceback_in_train_log() -> None:
    run = ManyModelTraining(broken_fit, STAGE).run(
        partition_by="REGION",
        dataframe=regions(["a", "b"]),
        run_id="broken",
        execution_options=ExecutionOptions(max_retries=1, retry_backoff_s=0.1),
    )
    assert run.wait(timeout=300, show_progress=False) == RunStatus.FAILURE
    detail = run.partition_details["a"]
    assert detail.status == PartitionStatus.FAILED
    assert detail.attempts == 2, "retried once"
    assert "ArithmeticError: cannot fit a" in detail.logs
    assert 'raise ArithmeticError(f"cannot fit {context.partition_id}")' in detail.logs
    with pytest.raises(LookupError, match=r"Partition 'a' of run 'broken' has no model \(status FAILED"):
        run.get_model("a")
    assert run.models().empty


def slow_fit(data: Any, context: Any) -> Any:
    time.sleep(60)
    return LineModel(0, 0)


def test_cancel_stops_a_training_run() -> None:
    run = ManyModelTraining(slow_fit, STAGE).run(
        partition_by="REGION", dataframe=regions(["a", "b", "c", "d"]), run_id="cancelled"
    )
    deadline = time.monotonic() + 120
    while not run.get_progress().get("RUNNING"):
        assert time.monotonic() < deadline, "no partition started"
        time.sleep(0.2)
    run.cancel()
    assert run.wait(timeout=120, show_progress=False) == RunStatus.CANCELLED


def test_ready_made_per_partition_xgboost_and_lightgbm() -> None:
    import lightgbm
    import xgboost

    frame = regions(["p", "q"])
    for estimator, kind, options in (
        ("xgboost", xgboost.Booster, {"num_boost_round": 20, "params": {"max_depth": 2}}),
        ("lightgbm", lightgbm.Booster, {"n_estimators": 20, "params": {"min_data_in_leaf": 5}}),
    ):
        trainer = ManyModelTraining.from_estimator(
            estimator, STAGE, label_col="Y", input_cols=["X"], **options
        )
        run = trainer.run(partition_by="REGION", dataframe=frame, run_id=f"ready_{estimator}")
        assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS, run.partition_details
        model = run.get_model("q")
        assert isinstance(model, kind)
        features = np.array([[0.5]], dtype=np.float32)
        value = (
            model.predict(xgboost.DMatrix(features)) if estimator == "xgboost" else model.predict(features)
        )
        assert float(value[0]) == pytest.approx(1.0, abs=0.25), estimator
        assert set(run.models()["serde"]) == {estimator}, "the estimator's native serde"


def test_ready_made_with_a_bad_option_fails_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="unexpected keyword argument 'max_dept'"):
        ManyModelTraining.from_estimator("xgboost", STAGE, label_col="Y", max_dept=3)
    with pytest.raises(ConfigError, match="Unknown estimator 'xgbost'"):
        ManyModelTraining.from_estimator("xgbost", STAGE, label_col="Y")


def test_cli_trains_scores_and_lists(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import duckdb

    from shoal.cli import cli
    from shoal.data.warehouse import warehouse_path

    connection = duckdb.connect(str(warehouse_path()))
    connection.register("frame_view", regions(["u", "v"]))
    connection.execute("CREATE OR REPLACE TABLE sales AS SELECT * FROM frame_view")
    connection.close()
    (tmp_path / "mmt_functions.py").write_text(
        "import numpy as np\n"
        "def fit(data, context):\n"
        "    f = data.to_pandas()\n"
        "    return np.polyfit(f['X'], f['Y'], 1)\n"
        "def fit_but_not_v(data, context):\n"
        "    if context.partition_id == 'v':\n"
        "        raise ValueError('no model for v')\n"
        "    return fit(data, context)\n"
        "def score(data, model, context):\n"
        "    f = data.to_pandas()\n"
        "    f['P'] = np.polyval(model, f['X'])\n"
        "    context.upload_to_stage(f, 'p.parquet', write_function=lambda df, p: df.to_parquet(p))\n"
    )
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    common = ["--table", "sales", "--partition-by", "REGION", "--stage-name", STAGE]
    trained = runner.invoke(cli, ["mmt", "train", "cli_models", "--function", "mmt_functions:fit", *common])
    assert trained.exit_code == 0, trained.output
    assert "run cli_models: SUCCESS" in trained.output
    listed = runner.invoke(cli, ["mmt", "models", "cli_models", "--stage-name", STAGE])
    assert listed.output.split("\n")[0].split() == ["partition_id", "path", "size", "serde"]
    assert len(listed.output.strip().splitlines()) == 3
    scored = runner.invoke(
        cli,
        [
            "mmt",
            "infer",
            "cli_scores",
            "--function",
            "mmt_functions:score",
            "--training-run-id",
            "cli_models",
            *common,
        ],
    )
    assert scored.exit_code == 0, scored.output
    assert "run cli_scores: SUCCESS" in scored.output
    ready = runner.invoke(
        cli,
        ["mmt", "train", "cli_xgb", "--estimator", "xgboost", "--label-col", "Y",
         "--option", "n_estimators=5", *common],
    )  # fmt: skip
    assert ready.exit_code == 0, ready.output
    assert "run cli_xgb: SUCCESS" in ready.output
    partial = runner.invoke(
        cli,
        ["mmt", "train", "cli_partial", "--function", "mmt_functions:fit_but_not_v", "--max-retries", "0",
         "--json", *common],
    )  # fmt: skip
    assert partial.exit_code == 1, "a training run that is not SUCCESS exits 1"
    assert json.loads(partial.stdout)[0]["partitions"]["FAILED"] == 1
    assert "ended PARTIAL_FAILURE: 1 partition(s) failed (v)" in str(partial.exception)


def test_stage_mode_one_model_per_file_keyed_by_its_path(home: Path, tmp_path: Path) -> None:
    from shoal.stages import create_stage

    data = create_stage("mmt_inputs", exist_ok=True)
    for key in ("north", "south"):
        local = tmp_path / f"{key}.parquet"
        regions([key]).to_parquet(local)
        data.put(str(local), "regions")
    run = ManyModelTraining(fit_line, STAGE).run_from_stage(
        stage_location="@mmt_inputs/regions", run_id="from_files"
    )
    assert isinstance(run, ManyModelRun)
    assert run.wait(timeout=300, show_progress=False) == RunStatus.SUCCESS
    assert sorted(run.partition_details) == ["regions/north.parquet", "regions/south.parquet"]
    model = run.get_model("regions/south.parquet")
    assert model.partition == "regions/south.parquet"
    assert sorted(run.models()["path"]) == [
        f"@{STAGE.upper()}/from_files/regions/north.parquet/model.pkl",
        f"@{STAGE.upper()}/from_files/regions/south.parquet/model.pkl",
    ]

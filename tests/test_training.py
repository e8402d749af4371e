"""Distributed estimators on a real 3-node local compute pool: XGBoost, LightGBM, PyTorch DDP.

Quality is compared with a single-process model trained on the same data; the stated tolerance
is ``QUALITY_TOLERANCE`` (the distributed model's test RMSE at most 10% above the single one's).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xgboost

import shoal
from pool_helpers import pool_in_new_home
from shoal.data import ShardedDataConnector
from shoal.errors import ConfigError, TrainingError
from shoal.plugins.lightgbm import LightGBMEstimator, LightGBMScalingConfig
from shoal.plugins.torch import PyTorchDistributor, PyTorchScalingConfig, WorkerResourceConfig, get_context
from shoal.plugins.xgboost import XGBEstimator, XGBScalingConfig
from waiting import within

POOL = "TRAIN3"
QUALITY_TOLERANCE = 1.10
FEATURES = [f"F{i}" for i in range(6)]

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from pool_in_new_home(tmp_path_factory.mktemp("train-home"), POOL, 3)


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))
    shoal.set_default_compute_pool(POOL)
    yield
    shoal.set_default_compute_pool(None)


def regression(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, len(FEATURES)))
    y = (
        2 * x[:, 0]
        + np.sin(3 * x[:, 1])
        + x[:, 2] * x[:, 3]
        + 0.5 * np.abs(x[:, 4])
        + rng.normal(scale=0.1, size=rows)
    )
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["Y"] = y
    return frame


def rmse(predicted: Any, frame: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((np.asarray(predicted) - frame["Y"].to_numpy()) ** 2)))


TRAIN, TEST = regression(8000), regression(2000, seed=11)


def test_xgboost_across_three_nodes_matches_a_single_process_model() -> None:
    params = {"max_depth": 5, "eta": 0.2}
    estimator = XGBEstimator(n_estimators=40, params=params, scaling_config=XGBScalingConfig(num_workers=3))
    booster = estimator.fit(TRAIN, input_cols=FEATURES, label_col="Y", eval_set=TEST)

    assert isinstance(booster, xgboost.Booster)
    assert booster.num_boosted_rounds() == 40
    single = xgboost.train(
        {"objective": "reg:squarederror", "tree_method": "hist", **params},
        xgboost.DMatrix(TRAIN[FEATURES].to_numpy(np.float32), label=TRAIN["Y"]),
        num_boost_round=40,
    )
    single_rmse = rmse(single.predict(xgboost.DMatrix(TEST[FEATURES].to_numpy(np.float32))), TEST)
    # the booster predicts on the caller's side, from a DMatrix or through the estimator
    ours = rmse(booster.predict(xgboost.DMatrix(TEST[FEATURES].to_numpy(np.float32))), TEST)
    assert ours == pytest.approx(rmse(estimator.predict(TEST), TEST))
    assert ours <= single_rmse * QUALITY_TOLERANCE, (ours, single_rmse)
    history = estimator.get_eval_results()
    assert sorted(history) == ["eval", "train"]
    assert len(history["eval"]["rmse"]) == 40
    assert history["eval"]["rmse"][-1] == pytest.approx(ours, rel=1e-3)  # metrics are global, not rank 0's


def test_lightgbm_across_two_nodes_matches_a_single_process_model() -> None:
    import lightgbm

    params = {"num_leaves": 31, "learning_rate": 0.2, "min_data_in_leaf": 20}
    estimator = LightGBMEstimator(
        n_estimators=40, params=params, scaling_config=LightGBMScalingConfig(num_workers=2), compute_pool=POOL
    )
    booster = estimator.fit(TRAIN, input_cols=FEATURES, label_col="Y", eval_set=TEST)

    assert isinstance(booster, lightgbm.Booster)
    assert booster.current_iteration() == 40
    single = lightgbm.train(
        {"objective": "regression", "verbosity": -1, **params},
        lightgbm.Dataset(TRAIN[FEATURES].to_numpy(np.float32), label=TRAIN["Y"]),
        num_boost_round=40,
    )
    single_rmse = rmse(single.predict(TEST[FEATURES].to_numpy(np.float32)), TEST)
    ours = rmse(booster.predict(TEST[FEATURES].to_numpy(np.float32)), TEST)
    assert ours == pytest.approx(rmse(estimator.predict(TEST), TEST))
    # every rank bins with cuts from all the rows (8,000: under LightGBM's sample size, so the
    # cuts are one process's), and the histograms are global: the model is one process's
    assert ours == pytest.approx(single_rmse, rel=0.01), (ours, single_rmse)
    assert len(estimator.get_eval_results()["eval"]["l2"]) == 40
    assert "[force_row_wise: 1]" in booster.model_to_string(), "a 1-thread rank builds histograms row-wise"


def test_ten_rows_over_two_workers_predict_what_one_process_predicts() -> None:
    import lightgbm

    tiny = regression(10)
    x, y = tiny[FEATURES].to_numpy(np.float32), tiny["Y"].to_numpy()
    xgb = XGBEstimator(n_estimators=3, scaling_config=XGBScalingConfig(num_workers=2))
    xgb.fit(tiny, label_col="Y")
    one_xgb = xgboost.train(
        {"objective": "reg:squarederror", "tree_method": "hist"},
        xgboost.DMatrix(x, label=y),
        num_boost_round=3,
    )
    np.testing.assert_allclose(xgb.predict(tiny), one_xgb.predict(xgboost.DMatrix(x)), rtol=1e-4, atol=1e-4)
    params = {"min_data_in_leaf": 1, "min_data_in_bin": 1}
    lgbm = LightGBMEstimator(
        n_estimators=3, params=params, scaling_config=LightGBMScalingConfig(num_workers=2)
    )
    lgbm.fit(tiny, input_cols=FEATURES, label_col="Y")
    one_lgbm = lightgbm.train(
        {"objective": "regression", "verbosity": -1, **params},
        lightgbm.Dataset(x, label=y),
        num_boost_round=3,
    )
    np.testing.assert_allclose(lgbm.predict(tiny), one_lgbm.predict(x), rtol=1e-4, atol=1e-4)


def test_too_few_rows_for_the_workers_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"'train' has 1 row\(s\), too few for 2 workers"):
        XGBEstimator(n_estimators=2, scaling_config=XGBScalingConfig(num_workers=2)).fit(
            regression(1), label_col="Y"
        )


def test_bad_columns_fail_before_any_job_is_submitted(home: Path) -> None:
    before = set(os.listdir(home))
    with pytest.raises(
        ConfigError, match=r"label_col 'NOPE' is not a column of the dataset; its columns are: F0"
    ):
        XGBEstimator().fit(TRAIN, label_col="NOPE")
    with pytest.raises(ConfigError, match=r"input_cols \['G'\] are not columns"):
        LightGBMEstimator().fit(TRAIN, input_cols=["F0", "G"], label_col="Y")
    with pytest.raises(ConfigError, match="fit needs label_col="):
        XGBEstimator().fit(TRAIN)
    with pytest.raises(ConfigError, match="num_workers must be a positive number or -1"):
        XGBEstimator(scaling_config=XGBScalingConfig(num_workers=0)).fit(TRAIN, label_col="Y")
    assert set(os.listdir(home)) == before, "nothing was submitted"


class KillRankOne(xgboost.callback.TrainingCallback):
    """An xgboost callback that kills rank 1's worker process at the third round."""

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        import signal

        if epoch == 2 and xgboost.collective.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        return False


def test_a_killed_xgboost_worker_is_a_clear_error_and_the_pool_stays_usable() -> None:
    estimator = XGBEstimator(
        n_estimators=50, scaling_config=XGBScalingConfig(num_workers=2), callbacks=[KillRankOne()]
    )
    with pytest.raises(
        TrainingError, match=r"training worker rank 1 on node \w+ \(127\.0\.0\.1, pid \d+\) died"
    ) as info:
        within(90, "the killed rank reported", lambda: estimator.fit(TRAIN, label_col="Y"))
    assert info.value.rank == 1
    assert info.value.log_path is not None
    assert info.value.log_path.endswith("rank1.log")
    assert "shoal job logs" in "".join(getattr(info.value, "__notes__", []))
    again = XGBEstimator(n_estimators=2, scaling_config=XGBScalingConfig(num_workers=3)).fit(
        TRAIN, label_col="Y"
    )
    assert again.num_boosted_rounds() == 2


class KillRankOneOnce(xgboost.callback.TrainingCallback):
    """Kills rank 1's worker at the third round of the first attempt only (a marker file says)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
        import signal

        if epoch == 2 and xgboost.collective.get_rank() == 1 and not os.path.exists(self.marker):
            Path(self.marker).write_text("killed once")
            os.kill(os.getpid(), signal.SIGKILL)
        return False


def test_a_killed_worker_restarts_training_when_max_failures_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv("SHOAL_TRAIN_MAX_FAILURES", "1")
    estimator = XGBEstimator(
        n_estimators=10,
        scaling_config=XGBScalingConfig(num_workers=2),
        callbacks=[KillRankOneOnce(str(marker))],
    )
    booster = within(120, "training restarted after the kill", lambda: estimator.fit(TRAIN, label_col="Y"))
    assert marker.read_text() == "killed once", "the first attempt lost rank 1"
    assert booster.num_boosted_rounds() == 10, "the second attempt trained every round"


def ddp_train() -> dict[str, Any]:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group()  # the reference's style: shoal already joined the group, this joins it
    context = get_context()
    shard = context.get_dataset_map()["train"].get_shard().to_pandas()
    features = torch.tensor(shard[["A", "B"]].to_numpy(), dtype=torch.float32)
    target = torch.tensor(shard["Y"].to_numpy(), dtype=torch.float32)
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(60):
        optimizer.zero_grad()
        loss = ((model(features).squeeze(1) - target) ** 2).mean()
        loss.backward()
        optimizer.step()
        context.get_metrics_reporter().log_metrics({"loss": float(loss)})
    me = {
        "rank": context.get_rank(),
        "world": context.get_world_size(),
        "local_rank": context.get_local_rank(),
        "local_world": context.get_local_world_size(),
        "node_rank": context.get_node_rank(),
        "rows": len(shard),
        "env_rank": os.environ["RANK"],
        "node": __import__("ray").get_runtime_context().get_node_id(),
    }
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, me)
    if context.get_rank() == 0:
        torch.save(model.module.state_dict(), os.path.join(context.get_model_dir(), "model.pt"))
    weights = model.module.weight.detach().numpy().ravel().tolist()
    return {
        "everyone": everyone,
        "weights": weights,
        "bias": float(model.module.bias),
        "master": (context.get_master_addr(), context.get_master_port()),
        "backend": context.get_default_backend(),
        "supported": context.get_supported_backends(),
        "hyper": context.get_hyper_params(),
    }


def test_pytorch_ddp_over_two_nodes_converges_with_the_right_ranks(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"A": rng.normal(size=1000), "B": rng.normal(size=1000)})
    frame["Y"] = 3 * frame["A"] - 2 * frame["B"] + 1
    assert "DDP_MODELS" not in [s.name for s in shoal.stages.list_stages()], "the run creates its stage"
    result = PyTorchDistributor(
        ddp_train,
        PyTorchScalingConfig(
            num_nodes=2,
            num_workers_per_node=2,
            resource_requirements_per_worker=WorkerResourceConfig(num_cpus=0.5),
        ),
    ).run(
        dataset_map={"train": ShardedDataConnector.from_dataframe(frame)},
        hyper_params={"lr": "0.1"},
        artifact_stage_location="@ddp_models/ddp",
    )
    value = result.value
    everyone = value["everyone"]
    assert [w["rank"] for w in everyone] == [0, 1, 2, 3]
    assert [w["env_rank"] for w in everyone] == ["0", "1", "2", "3"]
    assert {w["world"] for w in everyone} == {4}
    assert [(w["node_rank"], w["local_rank"]) for w in everyone] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert {w["local_world"] for w in everyone} == {2}
    assert [w["rows"] for w in everyone] == [250, 250, 250, 250]  # each rank got its own shard
    assert len({w["node"] for w in everyone}) == 2, "two nodes of the job"
    assert value["weights"] == pytest.approx([3.0, -2.0], abs=0.05)
    assert value["bias"] == pytest.approx(1.0, abs=0.05)
    assert value["master"][0] == "127.0.0.1"
    assert value["master"][1] > 0
    assert value["backend"] == "gloo"
    assert value["supported"] == ["gloo"]
    assert value["hyper"] == {"lr": "0.1"}
    losses = result.get_metrics()["loss"]
    assert len(losses) == 60
    assert losses[-1] < 1e-3 < losses[0]
    model_dir = result.get_model_dir()
    assert model_dir is not None
    assert model_dir.startswith("@DDP_MODELS/ddp/model/")
    files = result.download_model(tmp_path)
    assert [Path(f).name for f in files] == ["model.pt"]


def guarded_train() -> list[int]:
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        raise AssertionError("shoal should have initialised the process group")
    total = torch.tensor([get_context().get_rank() + 1])
    dist.all_reduce(total)
    return [int(total), dist.get_world_size()]


def test_a_train_func_that_only_checks_is_initialized_works() -> None:
    result = PyTorchDistributor(guarded_train, PyTorchScalingConfig(num_nodes=3)).run()
    assert result.value == [6, 3]


def test_a_killed_torch_worker_is_a_clear_error() -> None:
    def killed() -> None:
        import signal

        import torch.distributed as dist

        if get_context().get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        dist.barrier()

    with pytest.raises(TrainingError, match=r"training worker rank 1 on node .* died") as info:
        within(
            90, "the killed rank reported", PyTorchDistributor(killed, PyTorchScalingConfig(num_nodes=2)).run
        )
    assert "rank1.log" in str(info.value)


def test_a_hung_worker_is_stopped_after_the_hang_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    def one_hangs() -> None:
        if get_context().get_rank() == 1:
            time.sleep(3600)

    monkeypatch.setenv("SHOAL_TRAIN_HANG_TIMEOUT_S", "5")
    with pytest.raises(
        TrainingError, match=r"rank 1 on node .*: still running 5 s after rank 0 finished"
    ) as info:
        within(
            90, "the hung rank stopped", PyTorchDistributor(one_hangs, PyTorchScalingConfig(num_nodes=2)).run
        )
    assert "time.sleep(3600)" in str(info.value), "where the hung rank waits: its training thread's stack"


def test_ranks_that_make_no_progress_are_stopped_and_each_is_named_with_its_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def block_before_the_first_batch() -> None:
        import threading

        print(f"rank {get_context().get_rank()} opens its shard", flush=True)
        threading.Event().wait()  # a read that never returns

    monkeypatch.setenv("SHOAL_TRAIN_HANG_TIMEOUT_S", "5")
    monkeypatch.setenv("SHOAL_TRAIN_FIRST_PROGRESS_S", "5")
    with pytest.raises(TrainingError, match=r"2 rank\(s\) taken as hung") as info:
        within(
            90,
            "the ranks without progress stopped",
            PyTorchDistributor(block_before_the_first_batch, PyTorchScalingConfig(num_nodes=2)).run,
        )
    message = str(info.value)
    for rank in (0, 1):
        assert re.search(
            rf"- rank {rank} on node \w+ \(127\.0\.0\.1, pid \d+\): no sign of progress for 5 s", message
        )
        assert f"rank {rank} opens its shard" in message, "the last lines of each rank's log"
        assert f"rank{rank}.log" in message
    assert "threading.Event().wait()" in message, "where each rank waits"


def rows_of_my_shard() -> dict[str, Any]:
    shard = get_context().get_dataset_map()["train"].get_shard()
    ids = [int(i) for batch in shard.to_batches(batch_size=64) for i in batch.column("id").to_pylist()]
    return {"rank": get_context().get_rank(), "ids": ids}


def test_a_ray_dataset_shard_reaches_each_rank_and_is_read_there() -> None:
    from shoal.jobs import remote

    @remote(POOL, stage_name="jobs", target_instances=2)
    def train_over_a_ray_dataset(equal: bool) -> list[dict[str, Any]]:
        import ray.data
        import torch.distributed as dist

        from shoal.data import ShardedDataConnector
        from shoal.plugins.torch import PyTorchDistributor, PyTorchScalingConfig

        def gather() -> list[dict[str, Any]]:
            everyone: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(everyone, rows_of_my_shard())
            return everyone

        dataset = ray.data.from_pandas(pd.DataFrame({"id": range(1001)}))  # blocks owned by this job
        data = {"train": ShardedDataConnector.from_ray_dataset(dataset, equal=equal)}
        return PyTorchDistributor(gather, PyTorchScalingConfig(num_nodes=2)).run(dataset_map=data).value

    for equal in (True, False):
        ranks = within(
            240,
            f"training over a Ray Dataset (equal={equal})",
            lambda equal=equal: train_over_a_ray_dataset(equal).result(timeout=240),
        )
        assert [r["rank"] for r in ranks] == [0, 1]
        seen = [set(r["ids"]) for r in ranks]
        assert not seen[0] & seen[1], "each rank reads only its own shard"
        assert [len(r["ids"]) for r in ranks] == ([500, 500] if equal else [501, 500])
        assert seen[0] | seen[1] <= set(range(1001))


def test_an_exception_in_train_func_names_the_rank_and_keeps_the_cause() -> None:
    def fails() -> None:
        if get_context().get_rank() == 0:
            raise ValueError("bad hyper-parameter lr=-1")

    with pytest.raises(
        TrainingError, match=r"rank 0 .* failed: ValueError: bad hyper-parameter lr=-1"
    ) as info:
        PyTorchDistributor(fails, PyTorchScalingConfig(num_nodes=2)).run()
    assert isinstance(info.value.__cause__, ValueError)


def test_inside_a_job_an_estimator_uses_the_jobs_nodes() -> None:
    from shoal.jobs import remote

    @remote(POOL, stage_name="jobs", target_instances=2)
    def train_in_job() -> dict[str, Any]:
        from shoal.jobs.context import job_node_ids
        from shoal.plugins.torch import PyTorchDistributor, PyTorchScalingConfig, get_context

        def where() -> str:
            import ray

            return str(ray.get_runtime_context().get_node_id())

        def report() -> list[str]:
            import torch.distributed as dist

            nodes: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(nodes, where())
            return nodes if get_context().get_rank() == 0 else []

        ranks = PyTorchDistributor(report, PyTorchScalingConfig(num_nodes=2)).run().value
        booster = XGBEstimator(n_estimators=2).fit(regression(50), label_col="Y")
        return {"ranks": ranks, "job": job_node_ids(), "rounds": booster.num_boosted_rounds()}

    outcome = train_in_job().result(timeout=300)
    assert outcome["ranks"] == outcome["job"]
    assert outcome["rounds"] == 2


def test_num_nodes_above_the_pool_is_refused_before_submitting() -> None:
    with pytest.raises(ConfigError, match=f"num_nodes=5 but compute pool {POOL} has at most 3 node"):
        PyTorchDistributor(guarded_train, PyTorchScalingConfig(num_nodes=5)).run()


def reads_of_my_shard() -> dict[str, Any]:
    """A rank's rows and what its shard's source read to get them (the file slices' read log)."""
    shard = get_context().get_dataset_map()["train"].get_shard()
    ids = [int(i) for batch in shard.to_batches(batch_size=256) for i in batch.column("id").to_pylist()]
    reads = [
        {
            "file": r.location,
            "rows": [r.start, r.stop],
            "groups": None if r.row_groups is None else list(r.row_groups),
            "decoded": r.rows_decoded,
        }
        for r in shard.source.read_log
    ]
    return {"rank": get_context().get_rank(), "ids": ids, "reads": reads}


def gather_reads() -> list[dict[str, Any]]:
    import torch.distributed as dist

    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, reads_of_my_shard())
    return everyone


def test_each_rank_reads_only_the_row_groups_of_its_rows_from_a_stage_dataset() -> None:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from shoal.stages import create_stage

    stage = create_stage("TRAIN_FILES", exist_ok=True)
    for part in range(2):  # 2 files x 3,000 rows, in row groups of 500
        buffer = io.BytesIO()
        ids = pa.array(range(part * 3000, (part + 1) * 3000), pa.int64())
        pq.write_table(pa.table({"id": ids}), buffer, row_group_size=500)
        stage.write_bytes(f"rows/part{part}.parquet", buffer.getvalue())
    data = {"train": ShardedDataConnector.from_sources("@TRAIN_FILES/rows/")}
    ranks = PyTorchDistributor(gather_reads, PyTorchScalingConfig(num_nodes=3)).run(dataset_map=data).value

    assert [r["rank"] for r in ranks] == [0, 1, 2]
    assert [r["ids"] for r in ranks] == [list(range(start, start + 2000)) for start in (0, 2000, 4000)]
    middle = ranks[1]["reads"]  # rows 2,000-2,999 of part0 and 0-999 of part1
    assert [(r["file"].rsplit("/", 1)[-1], r["rows"], r["groups"]) for r in middle] == [
        ("part0.parquet", [2000, 3000], [4, 5]),
        ("part1.parquet", [0, 1000], [0, 1]),
    ]
    for rank in ranks:
        assert sum(r["decoded"] for r in rank["reads"]) == 2000, "only its own row groups are decoded"
    assert [len(r["reads"]) for r in ranks] == [1, 2, 1], "and only the files that hold its rows"


def test_a_warehouse_query_is_exported_once_and_each_rank_reads_its_part() -> None:
    from shoal.data import DataConnector
    from shoal.data.warehouse import connect_warehouse
    from shoal.stages import get_stage

    with connect_warehouse() as connection:
        connection.execute("CREATE OR REPLACE TABLE TRAIN_ROWS AS SELECT range AS id FROM range(24000)")
    query = DataConnector.from_sql("SELECT id FROM TRAIN_ROWS WHERE id % 2 = 0")
    data = {"train": ShardedDataConnector.from_connector(query)}
    ranks = PyTorchDistributor(gather_reads, PyTorchScalingConfig(num_nodes=2)).run(dataset_map=data).value

    seen = [set(r["ids"]) for r in ranks]
    assert not seen[0] & seen[1]
    assert seen[0] | seen[1] == set(range(0, 24000, 2))
    assert [len(s) for s in seen] == [6000, 6000]
    files = {read["file"] for r in ranks for read in r["reads"]}
    assert len(files) == 1, "one export of the query's rows"
    exported = files.pop()
    assert "/inputs/" in exported, exported
    assert exported.endswith("/train/rows.parquet"), exported
    for rank in ranks:
        assert sum(read["decoded"] for read in rank["reads"]) < 12000, "a rank decodes about its own part"
    stage_name, path = exported[1:].split("/", 1)
    assert not get_stage(stage_name).exists(path), "the export is removed when training ends"


def test_xgboost_from_a_warehouse_query_with_external_memory_matches_in_memory_training() -> None:
    from shoal.data import DataConnector
    from shoal.data.warehouse import connect_warehouse

    with connect_warehouse() as connection:
        connection.register("train_frame", TRAIN)
        connection.execute("CREATE OR REPLACE TABLE TRAIN_REGRESSION AS SELECT * FROM train_frame")
    query = DataConnector.from_sql("SELECT * FROM TRAIN_REGRESSION")
    params = {"max_depth": 5, "eta": 0.2}
    models = {}
    for paged in (False, True):
        estimator = XGBEstimator(
            n_estimators=30,
            params=params,
            scaling_config=XGBScalingConfig(num_workers=2),
            external_memory=paged,
        )
        estimator.fit(query, input_cols=FEATURES, label_col="Y")
        models[paged] = rmse(estimator.predict(TEST), TEST)
    assert models[True] <= models[False] * 1.02, models


def where_my_rows_come_from() -> dict[str, Any]:
    """A rank's shard: the kind of its source, what it says it is, and its ids (column 0)."""
    import torch.distributed as dist

    shard = get_context().get_dataset_map()["train"].get_shard()
    ids = [int(i) for batch in shard.to_batches(batch_size=4096) for i in batch.column(0).to_pylist()]
    me = {"kind": type(shard.source).__name__, "describe": shard.source.describe(), "ids": ids}
    everyone: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(everyone, me)
    return {"ranks": everyone}


def test_an_in_memory_frame_goes_into_the_object_store_once_and_each_rank_reads_its_range() -> None:
    from shoal.data.arrow_sources import ArrowTableSource

    frame = pd.DataFrame({"id": np.arange(200_000, dtype=np.int64)})
    frame["pad"] = frame["id"].astype(np.float64)
    data = {"train": ShardedDataConnector.from_dataframe(frame)}
    out = PyTorchDistributor(where_my_rows_come_from, PyTorchScalingConfig(num_nodes=2)).run(dataset_map=data)
    ranks = out.value["ranks"]

    assert [r["kind"] for r in ranks] == ["ObjectSliceSource", "ObjectSliceSource"]
    assert ranks[0]["describe"].startswith("rows 0 to 100000 of "), ranks[0]["describe"]
    assert ranks[1]["describe"].startswith("rows 100000 to 200000 of "), ranks[1]["describe"]
    assert ranks[1]["describe"].endswith("200000 rows (in Ray's object store)"), ranks[1]["describe"]
    assert ranks[0]["ids"] == list(range(100_000))
    assert ranks[1]["ids"] == list(range(100_000, 200_000))
    assert isinstance(data["train"].connector.source, ArrowTableSource), "the caller's input is unchanged"


def test_a_snowpark_service_frame_is_saved_in_the_service_and_each_rank_reads_its_row_range(
    request: pytest.FixtureRequest,
) -> None:
    import gc

    from snowflake.snowpark.functions import col

    from shoal.data.snowpark_service import embedded_session, stop_service

    request.addfinalizer(stop_service)  # the workspace's Snowpark service this test started
    session = embedded_session()
    rows = pd.DataFrame({"id": np.arange(6000, dtype=np.int64), "x": np.arange(6000) / 10})
    session.create_dataframe(rows).write.save_as_table("TRAIN_SNOWPARK_ROWS", mode="overwrite")
    frame = session.table("TRAIN_SNOWPARK_ROWS").filter(col('"id"') % 3 == 0)  # 2,000 rows
    data = {"train": ShardedDataConnector.from_dataframe(frame)}
    source = data["train"].connector.source
    assert type(source).__name__ == "ServiceTableSource", "the caller keeps a table name, not the rows"
    table = source.qualified
    run = PyTorchDistributor(where_my_rows_come_from, PyTorchScalingConfig(num_nodes=2)).run(dataset_map=data)

    found = run.value["ranks"]
    assert [r["kind"] for r in found] == ["ServiceTableSource", "ServiceTableSource"]
    assert found[0]["describe"].startswith("rows 0 to 1000 of Snowpark service table"), found[0]["describe"]
    assert found[1]["describe"].startswith("rows 1000 to 2000 of"), found[1]["describe"]
    assert sorted(found[0]["ids"] + found[1]["ids"]) == list(range(0, 6000, 3))
    assert not set(found[0]["ids"]) & set(found[1]["ids"])

    name = table.rsplit(".", 1)[-1].strip('"')
    listed = f"SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '{name}'"
    assert session.sql(listed).collect()[0][0] == 1
    del data, source
    gc.collect()
    assert session.sql(listed).collect()[0][0] == 0, "the saved rows are dropped with the caller's input"

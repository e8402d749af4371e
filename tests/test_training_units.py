"""The parts of distributed training that need no cluster: worker plans, ranks, shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from shoal.data import DataConnector, ShardedDataConnector
from shoal.data.sharding import FileSliceSource, shard_bounds
from shoal.errors import ConfigError
from shoal.jobs.context import JobNode
from shoal.train.ranks import WorkerSlot, current_rank, rank_infos
from shoal.train.scaling import ScalingRequest, plan_workers


def nodes(*cpus: float, gpus: float = 0) -> list[JobNode]:
    return [JobNode(f"node{i}" + "0" * 40, c, gpus, f"10.0.0.{i}") for i, c in enumerate(cpus)]


def test_auto_scaling_is_one_worker_per_node_with_all_cpus() -> None:
    plan = plan_workers(ScalingRequest(), nodes(4, 4, 4))
    assert plan.workers_per_node == (1, 1, 1)
    assert plan.cpus_per_worker == 4
    assert plan.gpus_per_worker == 0


def test_explicit_workers_are_spread_and_share_a_nodes_cpus() -> None:
    plan = plan_workers(ScalingRequest(num_workers=5), nodes(4, 4))
    assert plan.workers_per_node == (3, 2)
    assert plan.cpus_per_worker == 1  # floor(4 / 3)
    assert [(n, local) for n, local, _ in plan.rank_nodes()] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    two = plan_workers(ScalingRequest(num_workers=2), nodes(1, 1, 1))
    assert two.workers_per_node == (1, 1)
    assert len(two.nodes) == 2


def test_fractional_cpus_when_workers_outnumber_cpus() -> None:
    plan = plan_workers(ScalingRequest(workers_per_node=2, num_nodes=2), nodes(1, 1, 1))
    assert plan.workers_per_node == (2, 2)
    assert plan.cpus_per_worker == 0.5


def test_plans_that_do_not_fit_say_what_to_change() -> None:
    with pytest.raises(
        ConfigError, match=r"2 worker\(s\) x 3 CPU\(s\) do not fit on node node0000, which has 4"
    ):
        plan_workers(ScalingRequest(num_workers=4, cpus_per_worker=3), nodes(4, 4))
    with pytest.raises(ConfigError, match="num_nodes=3 but the job has 2 node"):
        plan_workers(ScalingRequest(num_nodes=3), nodes(4, 4))
    with pytest.raises(ConfigError, match="GPU"):
        plan_workers(ScalingRequest(gpus_per_worker=1), nodes(4, 4))
    with pytest.raises(ConfigError, match="num_workers must be a positive number or -1"):
        ScalingRequest(num_workers=-3)


def test_gpus_auto_means_one_per_worker_when_every_node_has_them() -> None:
    assert plan_workers(ScalingRequest(gpus_per_worker=-1), nodes(4, 4, gpus=1)).gpus_per_worker == 1
    assert plan_workers(ScalingRequest(gpus_per_worker=-1), nodes(4, 4)).gpus_per_worker == 0


def test_ranks_take_the_coordinator_from_rank_zero() -> None:
    slots = [
        WorkerSlot(
            rank=r,
            local_rank=r % 2,
            node_rank=r // 2,
            node_id=f"n{r // 2}",
            address=f"10.0.0.{r // 2}",
            pid=100 + r,
            ports=(5000 + r,),
            log_path=f"/tmp/rank{r}.log",
        )
        for r in range(4)
    ]
    ranks = rank_infos(slots, cpus=1, gpus=0)
    assert {(r.master_addr, r.master_port) for r in ranks} == {("10.0.0.0", 5000)}
    assert ranks[3].env() == {
        "RANK": "3",
        "LOCAL_RANK": "1",
        "WORLD_SIZE": "4",
        "LOCAL_WORLD_SIZE": "2",
        "NODE_RANK": "1",
        "GROUP_RANK": "1",
        "MASTER_ADDR": "10.0.0.0",
        "MASTER_PORT": "5000",
    }
    assert ranks[3].num_nodes == 2


def test_shard_bounds() -> None:
    assert shard_bounds(10, 3, equal=False) == [(0, 4), (4, 7), (7, 10)]
    assert shard_bounds(10, 3, equal=True) == [(0, 3), (3, 6), (6, 9)]
    assert shard_bounds(1, 2, equal=False) == [(0, 1), (1, 1)]


def test_in_memory_shards_hold_every_row_once() -> None:
    frame = pd.DataFrame({"X": np.arange(11)})
    shards = ShardedDataConnector.from_dataframe(frame).shards(3)
    values = [s.to_pandas()["X"].tolist() for s in shards]
    assert values == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    equal = ShardedDataConnector.from_dataframe(frame, equal=True).shards(3)
    assert [s.num_rows() for s in equal] == [3, 3, 3]


def test_file_shards_read_only_their_files(tmp_path: Path) -> None:
    for index in range(4):
        pq.write_table(
            pa.table({"X": np.arange(index * 5, index * 5 + 5)}), tmp_path / f"part{index}.parquet"
        )
    sharded = ShardedDataConnector.from_sources([str(tmp_path)])
    shards = sharded.shards(3)
    assert [s.to_pandas()["X"].tolist() for s in shards] == [
        list(range(0, 7)),
        list(range(7, 14)),
        list(range(14, 20)),
    ]
    first = shards[0].source
    assert isinstance(first, FileSliceSource)
    assert [first.files.files[i].path.rsplit("/", 1)[-1] for i, _, _ in first.slices] == [
        "part0.parquet",
        "part1.parquet",
    ]
    csv = tmp_path / "rows.csv"
    csv.write_text("X\n" + "\n".join(str(i) for i in range(5)) + "\n")
    assert [s.num_rows() for s in ShardedDataConnector.from_sources([str(csv)]).shards(2)] == [3, 2]


def test_rank_views_carry_one_shard_each_and_get_shard_needs_a_worker() -> None:
    sharded = ShardedDataConnector(DataConnector.from_dataframe(pd.DataFrame({"X": range(6)})))
    views = sharded.rank_views(2)
    assert [v.get_shard().to_pandas()["X"].tolist() for v in views] == [[0, 1, 2], [3, 4, 5]]
    assert views[0].connector is None
    with pytest.raises(RuntimeError, match="not inside a shoal training worker"):
        sharded.get_shard()
    with pytest.raises(RuntimeError, match="not inside a shoal training worker"):
        current_rank()


def test_get_context_outside_train_func_is_a_clear_error() -> None:
    from shoal.plugins.torch import get_context

    with pytest.raises(RuntimeError, match=r"get_context\(\) works only inside a train_func"):
        get_context()


def test_a_shard_becomes_one_float32_matrix_filled_batch_by_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.train import tabular_data

    monkeypatch.setattr(tabular_data, "BATCH_BYTES", 4 * 2 * 1024)  # 1,024-row batches of 2 features
    frame = pd.DataFrame({"A": np.arange(5000), "B": np.arange(5000) * 0.5, "K": ["x"] * 5000, "Y": 1.0})
    shard = DataConnector.from_dataframe(frame)
    columns = tabular_data.feature_columns(shard.schema(), None, "Y")
    assert columns == ["A", "B"], "numeric columns but the label; the string key is left out"
    features, label = tabular_data.read_matrix(shard, columns, "Y")
    assert features.dtype == np.float32
    assert features.flags.c_contiguous
    np.testing.assert_array_equal(features, frame[["A", "B"]].to_numpy(np.float32))
    np.testing.assert_array_equal(label, frame["Y"].to_numpy())
    batches = list(tabular_data.iter_matrices(shard, columns, "Y"))
    assert [len(b[0]) for b in batches] == [1024, 1024, 1024, 1024, 904]


def test_one_pass_reads_every_label_and_only_the_picked_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.plugins.lightgbm.bins import pick_rows
    from shoal.train import tabular_data

    monkeypatch.setattr(tabular_data, "BATCH_BYTES", 4 * 2 * 1024)  # 1,024-row batches: picks span several
    frame = pd.DataFrame({"A": np.arange(5000), "B": np.arange(5000) * 0.5, "Y": np.arange(5000) * 2.0})
    shard = DataConnector.from_dataframe(frame)
    picks = pick_rows(5000, 300, seed=3)
    rows, label = tabular_data.read_picked_rows(shard, ["A", "B"], "Y", picks)
    np.testing.assert_array_equal(rows, frame[["A", "B"]].to_numpy(np.float32)[picks])
    np.testing.assert_array_equal(label, frame["Y"].to_numpy())
    every, _ = tabular_data.read_picked_rows(shard, ["A", "B"], "Y", pick_rows(5000, 5000, seed=3))
    assert every.shape == (5000, 2), "a sample as large as the shard is the whole shard"


def test_lightgbm_bins_a_streamed_shard_as_it_bins_the_same_rows_in_one_matrix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import lightgbm

    from shoal.plugins.lightgbm.rows import ShardRows
    from shoal.train import tabular_data

    monkeypatch.setattr(tabular_data, "BATCH_BYTES", 4 * 3 * 1000)  # 1,000-row batches, LightGBM asks 1,024
    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.uniform(size=(5000, 3)).astype(np.float32), columns=["A", "B", "C"])
    frame["Y"] = frame["A"] * 2 + frame["B"]
    shard, names = DataConnector.from_dataframe(frame), ["A", "B", "C"]
    matrix = frame[names].to_numpy()
    params = {"objective": "regression", "verbosity": -1, "num_threads": 1}
    reference = lightgbm.Dataset(matrix[:2000], params=params).construct()
    streamed = ShardRows(shard, names, 5000)
    streamed.batch_size = 1024
    from_rows = lightgbm.Dataset(streamed, label=frame["Y"], params=params, reference=reference).construct()
    from_matrix = lightgbm.Dataset(matrix, label=frame["Y"], params=params, reference=reference).construct()
    models = [lightgbm.train(params, data, num_boost_round=5) for data in (from_rows, from_matrix)]
    np.testing.assert_array_equal(models[0].predict(matrix), models[1].predict(matrix))

    again = ShardRows(shard, names, 5000)
    assert again[0:10].shape == (10, 3)
    with pytest.raises(IndexError, match="front to back"):
        again[0:10]
    short = ShardRows(shard, names, 6000)
    short[0:5000]
    with pytest.raises(RuntimeError, match="holds 6000 rows but only 5000 were read"):
        short[5000:6000]


def test_xgboosts_iterator_builds_the_same_model_in_memory_and_paged_to_disk(tmp_path: Path) -> None:
    import xgboost

    from shoal.plugins.xgboost.data import quantile_matrix

    rng = np.random.default_rng(5)
    frame = pd.DataFrame(rng.normal(size=(3000, 4)), columns=["A", "B", "C", "D"])
    frame["Y"] = frame["A"] * 2 + frame["B"] ** 2
    shard = DataConnector.from_dataframe(frame)
    params = {"tree_method": "hist", "max_depth": 4, "nthread": 1}
    in_memory = quantile_matrix(shard, ["A", "B", "C", "D"], "Y", params)
    paged = quantile_matrix(
        shard, ["A", "B", "C", "D"], "Y", params, external_memory_dir=str(tmp_path / "cache")
    )
    assert in_memory.num_row() == paged.num_row() == 3000
    assert any((tmp_path / "cache").iterdir()), "the pages are written to the rank's scratch folder"
    test = xgboost.DMatrix(frame[["A", "B", "C", "D"]].to_numpy(np.float32))
    predictions = [xgboost.train(params, m, num_boost_round=10).predict(test) for m in (in_memory, paged)]
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-5)


def test_xgboosts_iterator_reads_the_shard_again_for_each_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.plugins.xgboost import data

    reads: list[int] = []
    original = data.iter_matrices

    def counted(*args: object, **kwargs: object) -> object:
        reads.append(1)
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(data, "iter_matrices", counted)
    frame = pd.DataFrame({"A": np.arange(2000.0), "Y": np.arange(2000.0) % 7})
    matrix = data.quantile_matrix(DataConnector.from_dataframe(frame), ["A"], "Y", {})
    assert matrix.num_row() == 2000
    assert len(reads) >= 2, "each of XGBoost's passes (sketches, then the matrix) reads the shard again"


def test_free_ports_come_from_below_the_ephemeral_range_and_are_distinct() -> None:
    from shoal import ports

    found, sockets = ports.free_ports(6, "127.0.0.1")
    try:
        assert len(set(found)) == 6
        assert all(port in ports.chosen_range() for port in found), found
        assert ports.chosen_range().start >= 20000, "above Ray's worker ports"
    finally:
        for sock in sockets:
            sock.close()


def test_free_ports_fall_back_to_the_os_when_the_range_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal import ports

    monkeypatch.setattr(ports, "chosen_range", lambda: range(0))
    found, sockets = ports.free_ports(2, "127.0.0.1")
    for sock in sockets:
        sock.close()
    assert all(port > 0 for port in found)


def test_a_gather_board_answers_with_every_ranks_value_in_rank_order_once_all_posted() -> None:
    from shoal.runtime.train_gather import GatherBoard

    board = GatherBoard(3)
    board.post(0, 2, b"two")
    board.post(0, 0, b"zero")
    assert board.collect(0) == [0, 2], "not all there yet: the ranks that posted"
    board.post(0, 1, b"one")
    board.post(1, 1, b"next round")
    assert board.collect(0) == [b"zero", b"one", b"two"]
    assert board.collect(1) == [1], "rounds are kept apart"


def test_all_gather_outside_a_training_worker_is_the_value_alone() -> None:
    from shoal.train.gather import all_gather, set_gatherer

    assert all_gather({"rows": 3}) == [{"rows": 3}]
    set_gatherer(lambda value, timeout: [value, value * 10])
    try:
        assert all_gather(4) == [4, 40]
    finally:
        set_gatherer(None)


def test_a_ranks_bin_sample_is_drawn_without_replacement_and_keeps_row_order() -> None:
    from shoal.plugins.lightgbm.bins import sample_rows

    features = np.arange(1000, dtype=np.float32).reshape(500, 2)
    sample = sample_rows(features, 100, seed=7)
    assert sample.shape == (100, 2)
    firsts = sample[:, 0]
    assert np.all(np.diff(firsts) > 0), "distinct rows, in their order"
    assert np.array_equal(sample, sample_rows(features, 100, seed=7)), "the same seed draws the same rows"
    assert sample_rows(features, 600, seed=7) is features, "asked for more than there are: all"


def test_a_data_parallel_rank_with_few_threads_builds_histograms_row_wise_unless_the_user_chose() -> None:
    from shoal.plugins.lightgbm.backend import ROW_WISE_MAX_THREADS, histogram_layout

    assert histogram_layout({}, 1) == {"force_row_wise": True}
    assert histogram_layout({}, ROW_WISE_MAX_THREADS) == {"force_row_wise": True}
    assert histogram_layout({}, ROW_WISE_MAX_THREADS + 1) == {}, "many threads: LightGBM's own choice"
    assert histogram_layout({"force_col_wise": True}, 1) == {}, "the user's layout stands"
    assert histogram_layout({"force_row_wise": True}, 1) == {}


class _Call:
    """A fake actor method: ``.remote(...)`` calls the board at once and returns the result."""

    def __init__(self, method: object) -> None:
        self.method = method

    def remote(self, *args: object) -> object:
        return self.method(*args)  # type: ignore[operator]


class _FakeBoardHandle:
    def __init__(self, board: object) -> None:
        self.post = _Call(board.post)  # type: ignore[attr-defined]
        self.collect = _Call(board.collect)  # type: ignore[attr-defined]


def test_a_rank_gathers_every_value_and_fails_naming_the_ranks_that_never_posted() -> None:
    import cloudpickle

    from shoal.errors import TrainingError
    from shoal.runtime.train_gather import GatherBoard, RankGatherer

    board = GatherBoard(2)
    board.post(0, 1, cloudpickle.dumps("from rank 1"))  # rank 1 posted round 0, never round 1
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    handle = _FakeBoardHandle(board)
    mine = RankGatherer(lambda: handle, 0, 2, get=lambda a: a, clock=lambda: now[0], sleep=sleep)
    assert mine("from rank 0", 5.0) == ["from rank 0", "from rank 1"]
    expected = r"rank 0 waited 5 s in gather round 1 for rank\(s\) \[1\], which never posted"
    with pytest.raises(TrainingError, match=expected):
        mine("again", 5.0)
    assert now[0] >= 5.0, "it waited until its deadline"


def test_a_ranks_result_passes_through_the_driver_pickled_and_becomes_the_value_where_it_is_used(
    tmp_path: Path,
) -> None:
    """The training driver hands rank 0's model on without importing its framework: it wraps
    the worker's bytes, pickles them again as the job's result, and the caller gets the model."""
    import pickle
    import subprocess
    import sys

    (tmp_path / "probe_model.py").write_text(
        "from dataclasses import dataclass\n\n@dataclass\nclass Model:\n    trees: int\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import probe_model

        (tmp_path / "worker.bin").write_bytes(pickle.dumps(probe_model.Model(trees=7)))
        driver = (
            "import pickle, sys\n"
            "from shoal.train.results import PickledResult\n"
            "result = PickledResult(open(sys.argv[1], 'rb').read())\n"
            "open(sys.argv[2], 'wb').write(pickle.dumps(result))\n"
            "print('probe_model' in sys.modules)\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", driver, str(tmp_path / "worker.bin"), str(tmp_path / "job.bin")],
            capture_output=True, text=True, timeout=60, cwd=tmp_path,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"  # the driver never imported the model's module
        assert pickle.loads((tmp_path / "job.bin").read_bytes()) == probe_model.Model(trees=7)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("probe_model", None)


def test_a_preload_imports_the_framework_with_its_optional_packages_hidden_then_unhides_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from shoal.train.preload import hidden_packages, import_in_background

    (tmp_path / "probe_optional.py").write_text("VALUE = 7\n")
    (tmp_path / "probe_framework.py").write_text(
        "try:\n    import probe_optional\n    HAS_OPTIONAL = True\n"
        "except ImportError:\n    HAS_OPTIONAL = False\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("probe_optional", "probe_framework"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    import_in_background(["probe_framework"], hidden=["probe_optional"]).wait(timeout=30)
    assert sys.modules["probe_framework"].HAS_OPTIONAL is False
    assert "probe_optional" not in sys.modules, "unhidden once the framework is imported"
    import probe_optional  # type: ignore[import-not-found]

    assert probe_optional.VALUE == 7
    with hidden_packages(["probe_optional"]):  # already imported: not hidden
        assert sys.modules["probe_optional"] is probe_optional

"""DataConnector and Ray: Ray datasets in, Ray datasets out, and connectors shipped to Ray tasks
that read the data themselves (warehouse query, stage files, in-memory rows)."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal
from shoal import hooks
from shoal.data import DataConnector
from shoal.data.warehouse import connect_warehouse

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    import ray

    ray.shutdown()  # a connection left by an earlier module
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def frame(rows: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": range(rows), "x": [i / 2 for i in range(rows)], "name": [f"n{i}" for i in range(rows)]}
    )


def test_from_ray_dataset_round_trips(ray_session: Any) -> None:
    expected = frame()
    dataset = ray_session.data.from_pandas(expected)
    assert hooks.data_source_for(dataset).name == "dataset.ray"
    for connector in (DataConnector.from_ray_dataset(dataset), DataConnector.from_dataframe(dataset)):
        pd.testing.assert_frame_equal(connector.to_pandas(), expected)
        assert [b.num_rows for b in connector.to_batches(4)] == [4, 4, 2]
        assert connector.num_rows() == 10
        assert connector.to_ray_dataset() is dataset
    again = pickle.loads(pickle.dumps(DataConnector.from_ray_dataset(ray_session.data.range(7))))
    assert again.to_arrow().column("id").to_pylist() == list(range(7))
    assert again.data_sources == ["ray dataset (Dataset): 1 columns"]


def test_to_ray_dataset_from_each_kind_of_source(ray_session: Any, tmp_path: Path) -> None:
    expected = frame()
    in_memory = DataConnector.from_dataframe(expected).to_ray_dataset()
    assert in_memory.to_pandas().to_dict("list") == expected.to_dict("list")

    stage = shoal.create_stage("rayin")
    pq.write_table(pa.Table.from_pandas(expected.iloc[:6], preserve_index=False), tmp_path / "a.parquet")
    pq.write_table(pa.Table.from_pandas(expected.iloc[6:], preserve_index=False), tmp_path / "b.parquet")
    stage.put(str(tmp_path / "a.parquet"), "p")
    stage.put(str(tmp_path / "b.parquet"), "p")
    files = DataConnector.from_sources(["@rayin/p/"]).to_ray_dataset()
    assert sorted(files.to_pandas()["id"].tolist()) == list(range(10))
    later = expected.iloc[:6].assign(id=lambda f: f["id"] + 100)
    pq.write_table(pa.Table.from_pandas(later, preserve_index=False), tmp_path / "a.parquet")
    stage.put(str(tmp_path / "a.parquet"), "p")  # replaces p/a.parquet
    assert sorted(files.to_pandas()["id"].tolist()) == [*range(6, 10), *range(100, 106)], (
        "local parquet files are read where they lie, when the dataset runs (nothing copied in the driver)"
    )

    remote = shoal.create_stage("rayremote", "memory://data-tests/ray")
    with remote.open("p/a.parquet", "wb") as handle:
        pq.write_table(pa.Table.from_pandas(expected, preserve_index=False), handle)
    via_rows = DataConnector.from_sources(["@rayremote/p/"]).to_ray_dataset()
    assert via_rows.to_pandas().to_dict("list") == expected.to_dict("list")

    empty = DataConnector.from_dataframe(expected.iloc[0:0]).to_ray_dataset()
    assert empty.count() == 0


def test_connectors_shipped_to_a_ray_task_read_their_data_there(ray_session: Any, tmp_path: Path) -> None:
    expected = frame()
    with connect_warehouse() as con:
        con.register("incoming", expected)
        con.execute("CREATE TABLE items AS SELECT * FROM incoming")
    stage = shoal.create_stage("raytask")
    pq.write_table(pa.Table.from_pandas(expected, preserve_index=False), tmp_path / "rows.parquet")
    stage.put(str(tmp_path / "rows.parquet"), "in")
    connectors = [
        DataConnector.from_sql("SELECT * FROM items ORDER BY id"),
        DataConnector.from_sources(["@raytask/in/"]),
        DataConnector.from_dataframe(expected),
    ]

    @ray_session.remote
    def read(connector: DataConnector) -> tuple[int, dict[str, list[Any]]]:
        import os

        return os.getpid(), connector.to_pandas().to_dict("list")

    results = ray_session.get([read.remote(c) for c in connectors])
    assert all(pid != __import__("os").getpid() for pid, _ in results)
    for _, columns in results:
        assert columns == expected.to_dict("list")


def test_a_sharded_ray_dataset_splits_with_ray(ray_session: Any) -> None:
    from shoal.data import ShardedDataConnector

    dataset = ray_session.data.from_pandas(frame(9))
    shards = ShardedDataConnector.from_ray_dataset(dataset).shards(2)
    rows = [sorted(s.to_pandas()["id"].tolist()) for s in shards]
    assert sorted(rows[0] + rows[1]) == list(range(9))
    assert [len(r) for r in rows] == [5, 4], "split by rows, not by blocks"
    assert [s.source.kind for s in shards] == ["ray dataset", "ray dataset"]
    equal = ShardedDataConnector.from_ray_dataset(dataset, equal=True).shards(2)
    assert [len(s.to_pandas()) for s in equal] == [4, 4]

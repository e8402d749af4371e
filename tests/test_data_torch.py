"""DataConnector.to_torch_dataset with real DataLoaders: shapes, single rows, drop_last, worker
striping over two worker processes, and the shuffle-with-workers error of the reference."""

from __future__ import annotations

import pickle

import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader

from shoal.data import DataConnector
from shoal.data.warehouse import connect_warehouse


def connector(rows: int = 10) -> DataConnector:
    return DataConnector.from_dataframe(
        pa.table(
            {
                "id": list(range(rows)),
                "x": [i / 2 for i in range(rows)],
                "ok": [i % 2 == 0 for i in range(rows)],
                "name": [f"n{i}" for i in range(rows)],
                "vec": [[float(i), float(-i)] for i in range(rows)],
            }
        )
    )


def test_batches_are_dicts_of_tensors_with_the_reference_shapes() -> None:
    dataset = connector().to_torch_dataset(batch_size=4)
    assert isinstance(dataset, torch.utils.data.IterableDataset)
    batches = list(DataLoader(dataset, batch_size=None))
    assert len(batches) == 2, "drop_last_batch defaults to True"
    first = batches[0]
    assert sorted(first) == ["id", "name", "ok", "vec", "x"]
    assert first["id"].shape == (4, 1)
    assert first["id"].dtype == torch.int64
    assert first["x"].dtype == torch.float64
    assert first["ok"].dtype == torch.bool
    assert first["id"].flatten().tolist() == [0, 1, 2, 3]
    assert first["name"] == ["n0", "n1", "n2", "n3"]
    assert first["vec"].shape == (4, 2)
    assert first["vec"][3].tolist() == [3.0, -3.0]
    kept = list(
        DataLoader(connector().to_torch_dataset(batch_size=4, drop_last_batch=False), batch_size=None)
    )
    assert [b["id"].shape[0] for b in kept] == [4, 4, 2]
    flat = next(iter(connector().to_torch_dataset(batch_size=4, expand_dims=False)))
    assert flat["id"].shape == (4,)
    assert DataConnector.from_dataframe(pa.table({"a": [1, 2]}), expand_dims=False).to_torch_dataset(
        batch_size=2
    ).__iter__().__next__()["a"].shape == (2,)


def test_batch_size_none_yields_single_rows() -> None:
    rows = list(DataLoader(connector().to_torch_dataset(), batch_size=None))
    assert len(rows) == 10
    assert rows[7]["id"].shape == ()
    assert rows[7]["id"].item() == 7
    assert rows[7]["x"].item() == 3.5
    assert rows[7]["name"] == "n7"
    assert rows[7]["vec"].tolist() == [7.0, -7.0]


def test_two_workers_stripe_batches_without_duplicates() -> None:
    dataset = connector(rows=40).to_torch_dataset(batch_size=4)
    batches = list(DataLoader(dataset, batch_size=None, num_workers=2))
    ids = [b["id"].flatten().tolist() for b in batches]
    assert len(ids) == 10
    # worker 0 reads batches 0, 2, 4...; worker 1 reads 1, 3, 5...; the loader interleaves them
    assert ids == [list(range(i, i + 4)) for i in range(0, 40, 4)]


def test_workers_read_a_warehouse_query_each_in_its_own_process() -> None:
    with connect_warehouse() as con:
        con.execute("CREATE TABLE numbers AS SELECT range AS id, range * 2 AS twice FROM range(30)")
    dataset = DataConnector.from_sql("SELECT * FROM numbers ORDER BY id").to_torch_dataset(batch_size=5)
    batches = list(DataLoader(dataset, batch_size=None, num_workers=2))
    assert [b["id"].flatten().tolist() for b in batches] == [list(range(i, i + 5)) for i in range(0, 30, 5)]
    assert batches[-1]["twice"].flatten().tolist() == [50, 52, 54, 56, 58]


def test_shuffle_with_workers_raises_like_the_reference() -> None:
    dataset = connector().to_torch_dataset(batch_size=2, shuffle=True)
    batches = iter(DataLoader(dataset, batch_size=None, num_workers=2))
    with pytest.raises(RuntimeError, match="shuffling is not supported with multiple DataLoader workers"):
        next(batches)
    # The failed iterator sits in a reference cycle with its exception; left to the garbage collector,
    # its workers take 10 s to stop (their queues are finalized first). Stop them now.
    batches._shutdown_workers()  # type: ignore[attr-defined]
    shuffled = [b["id"].flatten().tolist() for b in DataLoader(dataset, batch_size=None)]
    assert sorted(v for batch in shuffled for v in batch) == list(range(10))


def test_the_dataset_pickles_for_spawned_workers() -> None:
    dataset = pickle.loads(pickle.dumps(connector().to_torch_dataset(batch_size=5)))
    assert [b["id"].flatten().tolist() for b in dataset] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        connector().to_torch_dataset(batch_size=0)

"""DataConnector over files: stage locations and globs, local paths, parquet and CSV, schema
unification, errors, and evidence that reading streams."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal
from shoal.data import DataConnector
from shoal.errors import ConfigError, StageFileNotFoundError


def rows(start: int, count: int) -> pa.Table:
    ids = list(range(start, start + count))
    return pa.table({"id": ids, "score": [i / 10 for i in ids], "label": [f"r{i}" for i in ids]})


@pytest.fixture
def nested_stage(tmp_path: Path) -> shoal.Stage:
    """@LAKE/data/region=north/store=1/part-0.parquet ... plus files that are not data."""
    stage = shoal.create_stage("lake")
    layout = {
        "data/region=north/store=1/part-0.parquet": rows(0, 3),
        "data/region=north/store=2/part-0.parquet": rows(3, 2),
        "data/region=south/store=3/part-0.parquet": rows(5, 4),
        "data/region=south/part-9.parquet": rows(9, 1),
    }
    for path, table in layout.items():
        with stage.open(path, "wb") as handle:
            pq.write_table(table, handle)
    stage.write_text("data/README.txt", "not data")
    stage.write_text("data/_SUCCESS", "")
    stage.write_text("data/.hidden/x.parquet", "not parquet either")
    return stage


def ids(connector: DataConnector) -> list[int]:
    return list(connector.to_arrow().column("id").to_pylist())


def test_stage_folder_reads_every_data_file_in_order(nested_stage: shoal.Stage) -> None:
    connector = DataConnector.from_sources(["@lake/data/"])
    assert connector.data_sources == [
        "@LAKE/data/region=north/store=1/part-0.parquet",
        "@LAKE/data/region=north/store=2/part-0.parquet",
        "@LAKE/data/region=south/part-9.parquet",
        "@LAKE/data/region=south/store=3/part-0.parquet",
    ]
    assert ids(connector) == [0, 1, 2, 3, 4, 9, 5, 6, 7, 8]
    assert connector.columns == ["id", "score", "label"], "no hive columns are added"
    assert connector.num_rows() == 10
    assert repr(connector) == "DataConnector(4 parquet files from @lake/data/)"


def test_stage_globs_follow_the_stage_pattern_rules(nested_stage: shoal.Stage) -> None:
    # a pattern without "/" matches base names at any depth
    assert len(DataConnector.from_sources(["@lake/data/part-0.*"]).data_sources) == 3
    # "**" spans folders, "*" stays within one
    assert ids(DataConnector.from_sources(["@lake/data/region=south/**/*.parquet"])) == [9, 5, 6, 7, 8]
    assert ids(DataConnector.from_sources(["@lake/data/*/store=*/part-0.parquet"])) == [
        0,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
    ]
    assert ids(DataConnector.from_sources(["@db.sch.LAKE/data/region=north/store=2/part-0.parquet"])) == [
        3,
        4,
    ]
    assert ids(DataConnector.from_stage("@lake/data/region=north")) == [0, 1, 2, 3, 4]
    assert ids(DataConnector.from_stage("lake", "part-9.parquet")) == [9]
    # several sources, read in the order given, each file once
    both = DataConnector.from_sources(["@lake/data/region=south/part-9.parquet", "@lake/data/"])
    assert ids(both) == [9, 0, 1, 2, 3, 4, 5, 6, 7, 8]


def test_stage_errors_say_what_is_missing(nested_stage: shoal.Stage) -> None:
    with pytest.raises(StageFileNotFoundError, match=r"No file matches '\*\.csv' under @LAKE/data"):
        DataConnector.from_sources(["@lake/data/*.csv"])
    with pytest.raises(StageFileNotFoundError, match="No file or folder at @LAKE/nothing"):
        DataConnector.from_sources(["@lake/nothing/"])
    with pytest.raises(ConfigError, match=r"Cannot tell the format of 'data/README.txt'.*file_format="):
        DataConnector.from_sources(["@lake/data/README.txt"])
    nested_stage.write_text("docs/a.txt", "x")
    with pytest.raises(
        StageFileNotFoundError, match=r"'@lake/docs/' is a folder with no parquet or csv files"
    ):
        DataConnector.from_sources(["@lake/docs/"])
    with pytest.raises(shoal.StageNotFoundError, match="Stage 'NOPE' does not exist"):
        DataConnector.from_sources(["@nope/x.parquet"])
    with pytest.raises(ConfigError, match=r"read remote files through a stage: shoal\.create_stage"):
        DataConnector.from_sources(["s3://bucket/data/x.parquet"])
    with pytest.raises(ConfigError, match="file_format must be one of parquet, csv"):
        DataConnector.from_sources(["@lake/data/"], file_format="json")
    with pytest.raises(ConfigError, match="non-empty list of stage locations"):
        DataConnector.from_sources([])


def test_local_files_folders_globs_and_file_urls(tmp_path: Path) -> None:
    folder = tmp_path / "local"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    pq.write_table(rows(0, 2), folder / "a" / "one.parquet")
    pq.write_table(rows(2, 3), folder / "b" / "two.parquet")
    (folder / "notes.md").write_text("skip me")
    assert ids(DataConnector.from_sources([str(folder)])) == [0, 1, 2, 3, 4]
    assert ids(DataConnector.from_sources(str(folder / "**" / "two.parquet"))) == [2, 3, 4]
    assert ids(DataConnector.from_sources([(folder / "a" / "one.parquet").as_uri()])) == [0, 1]
    assert ids(DataConnector.from_sources([folder / "b" / "two.parquet"])) == [2, 3, 4]
    with pytest.raises(FileNotFoundError, match="No local file matches"):
        DataConnector.from_sources([str(folder / "*.csv")])
    with pytest.raises(FileNotFoundError, match="No local file or folder"):
        DataConnector.from_sources([str(tmp_path / "missing.parquet")])


def test_csv_files_plain_and_gzipped_with_schema_unification(tmp_path: Path) -> None:
    stage = shoal.create_stage("csvs")
    stage.write_text("in/1.csv", "id,score,label\n1,1,a\n2,2,b\n")  # score: int64 here
    with stage.open("in/2.csv.gz", "wb") as handle:
        handle.write(gzip.compress(b"id,score,extra\n3,3.5,x\n"))  # score: double; extra column
    connector = DataConnector.from_sources(["@csvs/in/"])
    assert connector.schema() == pa.schema(
        [("id", pa.int64()), ("score", pa.float64()), ("label", pa.string()), ("extra", pa.string())]
    )
    assert connector.to_pandas().to_dict("list") == {
        "id": [1, 2, 3],
        "score": [1.0, 2.0, 3.5],
        "label": ["a", "b", None],
        "extra": [None, None, "x"],
    }
    assert connector.source.num_rows() is None, "CSV row counts are not in metadata"
    assert connector.num_rows() == 3
    stage.write_text("semi/x.txt", "id;name\n1;a\n")
    semi = DataConnector.from_sources(["@csvs/semi/x.txt"], file_format="csv", csv_options={"delimiter": ";"})
    assert semi.to_pandas().to_dict("list") == {"id": [1], "name": ["a"]}
    with pytest.raises(ConfigError, match="Unknown CSV option 'delimeter'"):
        DataConnector.from_sources(["@csvs/semi/x.txt"], file_format="csv", csv_options={"delimeter": ";"})


def test_columns_are_projected(nested_stage: shoal.Stage) -> None:
    connector = DataConnector.from_sources(["@lake/data/"], columns=["label", "id"])
    assert connector.columns == ["label", "id"]
    assert connector.to_pandas(limit=2).to_dict("list") == {"label": ["r0", "r1"], "id": [0, 1]}
    with pytest.raises(ConfigError, match=r"has no column\(s\) \['nope'\]"):
        DataConnector.from_sources(["@lake/data/"], columns=["nope"]).schema()


def test_files_on_a_non_local_stage_are_read_through_the_backend(tmp_path: Path) -> None:
    stage = shoal.create_stage("remote", "memory://data-tests/remote")
    assert stage.backend.local_path("") is None
    with stage.open("p/x.parquet", "wb") as handle:
        pq.write_table(rows(0, 4), handle)
    with stage.open("p/y.csv.gz", "wb") as handle:
        handle.write(gzip.compress(b"id,score,label\n4,0.4,r4\n"))
    connector = DataConnector.from_sources(["@remote/p/"])
    assert ids(connector) == [0, 1, 2, 3, 4]
    assert [b.num_rows for b in connector.to_batches(3)] == [3, 2]
    assert ids(pickle.loads(pickle.dumps(connector))) == [0, 1, 2, 3, 4]


def test_shuffling_files_mixes_file_order_and_keeps_every_row(nested_stage: shoal.Stage) -> None:
    connector = DataConnector.from_sources(["@lake/data/"])
    seen = [
        tuple(v for b in connector.to_batches(10, shuffle=True, seed=s) for v in b.column(0).to_pylist())
        for s in range(6)
    ]
    assert all(sorted(order) == list(range(10)) for order in seen)
    assert len(set(seen)) > 1


def test_reading_a_large_parquet_file_on_a_stage_streams() -> None:
    """200k rows in 20 row groups: the first 1000-row batch costs about one row group of Arrow
    memory, not the file; reading all of it never holds more than a few row groups."""
    total = 200_000
    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "id": np.arange(total),
            "x": rng.random(total),
            "s": [f"row-{i:08d}" for i in range(total)],
        }
    )
    full_size = table.nbytes
    stage = shoal.create_stage("big")
    with stage.open("data/big.parquet", "wb") as handle:
        pq.write_table(table, handle, row_group_size=10_000)
    del table
    connector = DataConnector.from_sources(["@big/data/"])
    assert connector.num_rows() == total, "parquet row counts come from the footer"
    base = pa.total_allocated_bytes()
    batches = connector.to_batches(1000)
    first = next(batches)
    first_cost = pa.total_allocated_bytes() - base
    assert first.num_rows == 1000
    assert first.column("id").to_pylist()[:3] == [0, 1, 2]
    assert first_cost < full_size / 4, (first_cost, full_size)
    peak, count, last_id = first_cost, first.num_rows, -1
    for batch in batches:
        count += batch.num_rows
        last_id = batch.column("id")[-1].as_py()
        peak = max(peak, pa.total_allocated_bytes() - base)
    assert (count, last_id) == (total, total - 1)
    assert peak < full_size / 4, (peak, full_size)
    head = connector.to_pandas(limit=5)
    pd.testing.assert_frame_equal(head[["id"]], pd.DataFrame({"id": np.arange(5)}))


def test_a_file_whose_name_holds_glob_characters_is_read_literally(tmp_path: Path) -> None:
    """DPF writes partition values into folder names; a value may contain '*', '?' or '['."""
    stage = shoal.create_stage("parts")
    for value, table in (("a*b", rows(0, 2)), ("aXb", rows(2, 2))):
        with stage.open(f"in/key={value}/part.parquet", "wb") as handle:
            pq.write_table(table, handle)
    assert ids(DataConnector.from_sources(["@parts/in/key=a*b/part.parquet"])) == [0, 1]
    assert ids(DataConnector.from_sources(["@parts/in/key=a?b/part.parquet"])) == [0, 1, 2, 3]
    local = tmp_path / "x[1].parquet"
    pq.write_table(rows(7, 1), local)
    assert ids(DataConnector.from_sources([str(local)])) == [7]

"""DataConnector over every in-memory input kind, SQL (warehouse and DuckDB connections),
Snowpark local_testing, pickling (in this process and in a fresh one), errors, and the built-in
data-source plugin."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

import shoal
from shoal import hookimpl, hooks
from shoal.contributions import DataSourceSpec
from shoal.data import DataConnector, DataSource
from shoal.data.arrow_sources import ArrowTableSource
from shoal.data.duckdb_sources import DuckDBQuerySource, DuckDBRelationSource
from shoal.data.snowpark_sources import check_single_query
from shoal.data.warehouse import connect_warehouse, warehouse_path
from shoal.errors import ConfigError, PluginError
from shoal.testing import temporary_plugin
from stage_helpers import python_command, python_env, run_python


def frame(rows: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(rows, dtype="int64"),
            "x": np.arange(rows, dtype="float64") / 4,
            "name": [f"n{i}" for i in range(rows)],
            "flag": [i % 3 == 0 for i in range(rows)],
        }
    )


def _polars(df: pd.DataFrame) -> Any:
    polars = pytest.importorskip("polars")
    return polars.from_pandas(df)


INPUTS: dict[str, Callable[[pd.DataFrame], Any]] = {
    "pandas": lambda df: df,
    "polars": _polars,
    "polars-lazy": lambda df: _polars(df).lazy(),
    "arrow-table": lambda df: pa.Table.from_pandas(df, preserve_index=False),
    "arrow-record-batch": lambda df: pa.RecordBatch.from_pandas(df, preserve_index=False),
    "arrow-batch-list": lambda df: pa.Table.from_pandas(df, preserve_index=False).to_batches(max_chunksize=3),
    "arrow-dataset": lambda df: pads.dataset(pa.Table.from_pandas(df, preserve_index=False)),
    "duckdb-relation": lambda df: duckdb.connect().from_arrow(pa.Table.from_pandas(df, preserve_index=False)),
}
EXPECTED_SOURCE = {
    "pandas": "dataframe.pandas",
    "polars": "dataframe.polars",
    "polars-lazy": "dataframe.polars",
    "arrow-table": "table.arrow",
    "arrow-record-batch": "table.arrow",
    "arrow-batch-list": "batches.arrow",
    "arrow-dataset": "dataset.arrow",
    "duckdb-relation": "dataframe.duckdb",
}


@pytest.mark.parametrize("kind", sorted(INPUTS))
def test_every_in_memory_kind_round_trips(kind: str) -> None:
    expected = frame()
    obj = INPUTS[kind](expected)
    assert hooks.data_source_for(obj).name == EXPECTED_SOURCE[kind]
    connector = DataConnector.from_dataframe(obj)
    pd.testing.assert_frame_equal(connector.to_pandas(), expected)
    table = connector.to_arrow()
    assert table.column_names == ["id", "x", "name", "flag"]
    assert table.column("id").to_pylist() == list(range(10))
    assert table.column("name").to_pylist() == [f"n{i}" for i in range(10)]
    assert connector.columns == ["id", "x", "name", "flag"]
    assert connector.num_rows() == 10
    assert [b.num_rows for b in connector.to_batches(4)] == [4, 4, 2]
    pd.testing.assert_frame_equal(connector.to_pandas(limit=3), expected.head(3))
    again = pickle.loads(pickle.dumps(connector))
    pd.testing.assert_frame_equal(again.to_pandas(), expected)


def test_to_batches_has_exact_sizes_across_source_batches() -> None:
    table = pa.table({"v": list(range(10))})
    connector = DataConnector.from_dataframe(table.to_batches(max_chunksize=3))  # source batches 3, 3, 3, 1
    batches = list(connector.to_batches(4))
    assert [b.num_rows for b in batches] == [4, 4, 2]
    assert [b.column(0).to_pylist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [b.num_rows for b in connector.to_batches(4, drop_last_batch=True)] == [4, 4]
    assert [b.num_rows for b in connector.to_batches(25)] == [10]
    assert [b.num_rows for b in connector.to_batches(1)] == [1] * 10
    assert [b.num_rows for b in connector.to_batches()] == [3, 3, 3, 1]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            list(connector.to_batches(bad))  # type: ignore[arg-type]


def test_shuffled_batches_keep_every_row_and_repeat_with_a_seed() -> None:
    connector = DataConnector.from_dataframe(pa.table({"v": list(range(100))}))
    first = [v for b in connector.to_batches(10, shuffle=True, seed=3) for v in b.column(0).to_pylist()]
    again = [v for b in connector.to_batches(10, shuffle=True, seed=3) for v in b.column(0).to_pylist()]
    assert sorted(first) == list(range(100))
    assert first == again
    assert first != list(range(100))


def test_empty_input_is_not_an_error() -> None:
    empty = frame().iloc[0:0]
    connector = DataConnector.from_dataframe(empty)
    assert list(connector.to_batches(4)) == []
    assert connector.num_rows() == 0
    assert connector.to_arrow().schema.names == ["id", "x", "name", "flag"]
    result = connector.to_pandas()
    assert list(result.columns) == ["id", "x", "name", "flag"]
    assert len(result) == 0
    assert len(DataConnector.from_dataframe(frame()).to_pandas(limit=0)) == 0


def test_data_sources_and_repr_say_what_is_read() -> None:
    connector = DataConnector.from_dataframe(frame())
    assert connector.data_sources == ["pandas DataFrame: 10 rows x 4 columns (in memory)"]
    assert repr(connector) == "DataConnector(pandas DataFrame: 10 rows x 4 columns (in memory))"
    assert isinstance(connector.source, ArrowTableSource)


def test_pandas_index_is_dropped_unless_asked() -> None:
    indexed = frame(3).set_index("name")
    assert DataConnector.from_dataframe(indexed).columns == ["id", "x", "flag"]
    kept = DataConnector.from_dataframe(indexed, preserve_index=True)
    assert kept.columns == ["id", "x", "flag", "name"]
    assert list(kept.to_pandas().index) == ["n0", "n1", "n2"]


# -- SQL --------------------------------------------------------------------------------------


def _fill_warehouse(rows: int = 10) -> pd.DataFrame:
    expected = frame(rows)
    with connect_warehouse() as con:
        con.register("incoming", expected)
        con.execute("CREATE OR REPLACE TABLE items AS SELECT * FROM incoming")
    return expected


def test_from_sql_reads_the_embedded_warehouse() -> None:
    assert warehouse_path() == Path(os.environ["SHOAL_HOME"]).resolve() / "warehouse.duckdb"
    expected = _fill_warehouse()
    connector = DataConnector.from_sql("SELECT * FROM items ORDER BY id")
    assert isinstance(connector.source, DuckDBQuerySource)
    assert connector.data_sources == ["duckdb query on warehouse: SELECT * FROM items ORDER BY id"]
    pd.testing.assert_frame_equal(connector.to_pandas(), expected)
    assert connector.num_rows() == 10
    assert [b.num_rows for b in connector.to_batches(4)] == [4, 4, 2]
    odd = DataConnector.from_sql("SELECT id FROM items WHERE id % 2 = 1 ORDER BY id;")
    assert odd.to_arrow().column("id").to_pylist() == [1, 3, 5, 7, 9]
    nothing = DataConnector.from_sql("SELECT * FROM items WHERE id < 0")
    assert nothing.to_pandas().columns.tolist() == ["id", "x", "name", "flag"]
    assert nothing.num_rows() == 0
    # the warehouse is held open for writing in this process: reading shares that database
    with connect_warehouse() as con:
        con.execute("INSERT INTO items SELECT * FROM items WHERE id = 0")
        assert DataConnector.from_sql("SELECT count(*) AS n FROM items").to_pandas()["n"].tolist() == [11]


def test_from_sql_creates_an_empty_warehouse_and_refuses_statements() -> None:
    assert not warehouse_path().exists()
    assert DataConnector.from_sql("SELECT 42 AS answer").to_pandas()["answer"].tolist() == [42]
    assert warehouse_path().exists()
    with pytest.raises(ValueError, match=r"needs a query that returns rows.*CREATE statement"):
        DataConnector.from_sql("CREATE TABLE t (a INTEGER)")
    with pytest.raises(ValueError, match="exactly one query, got 2 statements"):
        DataConnector.from_sql("SELECT 1; SELECT 2")
    with pytest.raises(ValueError, match="missing_table"):
        DataConnector.from_sql("SELECT * FROM missing_table")
    with pytest.raises(ValueError, match="needs a SQL query string"):
        DataConnector.from_sql("  ")


def test_warehouse_held_by_another_process_fails_with_a_clear_message() -> None:
    _fill_warehouse()
    holder = subprocess.Popen(
        python_command(
            """
            import sys, duckdb
            con = duckdb.connect(sys.argv[1])
            print("holding", flush=True)
            sys.stdin.read()
            """,
            str(warehouse_path()),
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=python_env(),
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(ConfigError, match=r"another process holds it \(DuckDB allows one writer process"):
            connect_warehouse(read_only=True, timeout=0.3)
    finally:
        holder.communicate("", timeout=30)
    with connect_warehouse(read_only=True) as con:  # free again
        assert con.execute("SELECT count(*) FROM items").fetchone() == (10,)


def test_from_sql_with_a_duckdb_connection(tmp_path: Path) -> None:
    expected = frame()
    database = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(database))
    con.register("incoming", expected)
    con.execute("CREATE TABLE items AS SELECT * FROM incoming")
    con.execute("CREATE TEMP TABLE scratch AS SELECT id FROM items WHERE id < 3")

    on_file = DataConnector.from_sql("SELECT * FROM items ORDER BY id", session=con)
    assert isinstance(on_file.source, DuckDBQuerySource)
    assert on_file.source.database == str(database)
    pd.testing.assert_frame_equal(on_file.to_pandas(), expected)

    temporary = DataConnector.from_sql("SELECT id FROM scratch ORDER BY id", session=con)
    assert isinstance(temporary.source, DuckDBRelationSource), "temp tables live only in that connection"
    assert temporary.to_arrow().column("id").to_pylist() == [0, 1, 2]
    shipped = pickle.loads(pickle.dumps(temporary))
    assert shipped.to_arrow().column("id").to_pylist() == [0, 1, 2]

    memory = duckdb.connect()
    in_memory = DataConnector.from_sql("SELECT range AS v FROM range(5)", session=memory)
    assert isinstance(in_memory.source, DuckDBRelationSource)
    assert pickle.loads(pickle.dumps(in_memory)).to_arrow().column("v").to_pylist() == [0, 1, 2, 3, 4]
    con.close()
    with pytest.raises(ConfigError, match=r"session must be None.*got builtins\.int"):
        DataConnector.from_sql("SELECT 1", session=42)


# -- Snowpark local_testing -------------------------------------------------------------------


@pytest.fixture(scope="module")
def snowpark_session() -> Iterator[Any]:
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    yield session
    session.close()


def test_snowpark_local_testing_dataframe(snowpark_session: Any) -> None:
    expected = frame().rename(columns=str.upper)
    df = snowpark_session.create_dataframe(expected)
    assert hooks.data_source_for(df).name == "dataframe.snowpark"
    connector = DataConnector.from_dataframe(df)
    assert connector.data_sources == ["Snowpark DataFrame (local_testing): 10 rows x 4 columns (in memory)"]
    pd.testing.assert_frame_equal(connector.to_pandas(), df.to_pandas())
    assert connector.to_arrow().column("NAME").to_pylist() == [f"n{i}" for i in range(10)]
    pd.testing.assert_frame_equal(pickle.loads(pickle.dumps(connector)).to_pandas(), df.to_pandas())
    df.write.save_as_table("ITEMS")
    from snowflake.snowpark.functions import col

    from_table = DataConnector.from_dataframe(snowpark_session.table("ITEMS").filter(col("ID") < 3))
    assert from_table.to_arrow().column("ID").to_pylist() == [0, 1, 2]
    with pytest.raises(ConfigError, match="local_testing sessions cannot run SQL"):
        DataConnector.from_sql("SELECT 1", session=snowpark_session)


def test_real_session_rule_one_query_and_no_post_actions() -> None:
    """The real-session path needs a Snowflake account; its rule is checked on the queries dict
    that ``DataFrame.queries`` returns (the only part testable here)."""
    check_single_query({"queries": ["SELECT * FROM T"], "post_actions": []})
    with pytest.raises(
        ValueError, match=r"multiple queries or post actions are not supported \(this one has 2"
    ):
        check_single_query({"queries": ["CREATE TEMP TABLE X AS ...", "SELECT * FROM X"], "post_actions": []})
    with pytest.raises(ValueError, match="1 queries and 1 post actions"):
        check_single_query({"queries": ["SELECT 1"], "post_actions": ["DROP TABLE X"]})


def test_from_sources_accepts_the_session_first_like_the_reference(
    snowpark_session: Any, tmp_path: Path
) -> None:
    stage = shoal.create_stage("ref")
    local = tmp_path / "part.parquet"
    pq.write_table(pa.table({"v": [1, 2, 3]}), local)
    stage.put(str(local), "d")
    for session in (snowpark_session, duckdb.connect(), None):
        connector = DataConnector.from_sources(session, ["@ref/d/"])
        assert connector.to_arrow().column("v").to_pylist() == [1, 2, 3]
    assert DataConnector.from_sources(["@ref/d/"], snowpark_session).data_sources == ["@REF/d/part.parquet"]


# -- pickling, read back in a fresh process ---------------------------------------------------


def test_connectors_of_every_kind_are_read_back_in_another_process(tmp_path: Path) -> None:
    expected = frame()
    _fill_warehouse()
    stage = shoal.create_stage("shipped")
    pq.write_table(pa.Table.from_pandas(expected, preserve_index=False), tmp_path / "rows.parquet")
    stage.put(str(tmp_path / "rows.parquet"), "in")
    file_db = tmp_path / "file.duckdb"
    with duckdb.connect(str(file_db)) as con:
        con.register("incoming", expected)
        con.execute("CREATE TABLE items AS SELECT * FROM incoming")
        on_file = DataConnector.from_sql("SELECT * FROM items ORDER BY id", session=con)
    connectors = {
        "pandas": DataConnector.from_dataframe(expected),
        "polars": DataConnector.from_dataframe(_polars(expected)),
        "arrow": DataConnector.from_dataframe(pa.Table.from_pandas(expected, preserve_index=False)),
        "arrow-dataset-files": DataConnector.from_dataframe(pads.dataset(str(tmp_path / "rows.parquet"))),
        "duckdb-relation": DataConnector.from_dataframe(duckdb.connect().from_df(expected)),
        "duckdb-file-query": on_file,
        "warehouse": DataConnector.from_sql("SELECT * FROM items ORDER BY id"),
        "stage-files": DataConnector.from_sources(["@shipped/in/"]),
        "local-files": DataConnector.from_sources([str(tmp_path / "rows.parquet")]),
    }
    blob = tmp_path / "connectors.pkl"
    blob.write_bytes(pickle.dumps(connectors))
    done = run_python(
        """
        import json, pickle, sys
        connectors = pickle.loads(open(sys.argv[1], "rb").read())
        print(json.dumps({k: c.to_pandas().to_dict("list") for k, c in connectors.items()}))
        """,
        str(blob),
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sorted(result) == sorted(connectors)
    want = json.loads(json.dumps(expected.to_dict("list")))
    for kind, columns in result.items():
        assert columns == want, kind


# -- errors -----------------------------------------------------------------------------------


def test_unsupported_input_names_the_type_and_the_installed_sources() -> None:
    with pytest.raises(ConfigError) as caught:
        DataConnector.from_dataframe({"a": [1, 2]})
    message = str(caught.value)
    assert "No data source accepts an object of type builtins.dict" in message
    for name in ("dataframe.pandas", "dataframe.polars", "dataframe.snowpark", "dataset.ray", "table.arrow"):
        assert name in message
    with pytest.raises(TypeError, match=r"needs a shoal\.data\.DataSource, got builtins\.str"):
        DataConnector("SELECT 1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"from_ray_dataset needs a ray\.data\.Dataset, got DataFrame"):
        DataConnector.from_ray_dataset(frame())


# -- the built-in plugin, and plugins that add sources ----------------------------------------


def test_builtin_data_sources_plugin_contributes_one_source_per_kind() -> None:
    specs = hooks.data_sources()
    assert sorted(specs) == [
        "batches.arrow",
        "dataframe.duckdb",
        "dataframe.pandas",
        "dataframe.polars",
        "dataframe.snowpark",
        "dataset.arrow",
        "dataset.ray",
        "table.arrow",
    ]
    assert all(spec.description for spec in specs.values())
    for obj in (7, "text", 1.5, None, [], [1, 2], {"a": 1}, b"x"):
        assert [n for n, s in specs.items() if s.accepts(obj)] == [], obj


def test_accepts_predicates_import_no_library() -> None:
    done = run_python(
        """
        import json, sys
        from shoal import hooks
        specs = hooks.data_sources()
        class DataFrame: pass
        class Dataset: pass
        for obj in (1, "a", [1], {"a": 1}, DataFrame(), Dataset(), object()):
            assert not any(spec.accepts(obj) for spec in specs.values())
        heavy = ("pandas", "polars", "pyarrow", "duckdb", "ray", "torch", "snowflake.snowpark", "numpy")
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


class CsvText:
    """A plugin's own input kind: CSV held in a string."""

    def __init__(self, text: str) -> None:
        self.text = text


class CsvTextSource(DataSource):
    kind = "csv text"

    def __init__(self, obj: CsvText) -> None:
        self.text = obj.text

    def _table(self) -> pa.Table:
        import io

        import pyarrow.csv as pcsv

        return pcsv.read_csv(io.BytesIO(self.text.encode()))

    def schema(self) -> pa.Schema:
        return self._table().schema

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        yield from self._table().to_batches(max_chunksize=batch_size)


class CsvTextPlugin:
    @hookimpl
    def shoal_data_sources(self) -> Iterator[DataSourceSpec]:
        yield DataSourceSpec(name="csv-text", accepts=lambda o: isinstance(o, CsvText), factory=CsvTextSource)


def test_a_plugin_adds_a_data_source() -> None:
    with temporary_plugin(CsvTextPlugin(), "csv_text"):
        connector = DataConnector.from_dataframe(CsvText("a,b\n1,x\n2,y\n3,z\n"))
        assert connector.data_sources == ["csv text"]
        assert connector.to_pandas().to_dict("list") == {"a": [1, 2, 3], "b": ["x", "y", "z"]}
        assert [b.num_rows for b in connector.to_batches(2)] == [2, 1]
        assert connector.num_rows() == 3
    with pytest.raises(
        ConfigError, match=r"No data source accepts an object of type test_data_connector\.CsvText"
    ):
        DataConnector.from_dataframe(CsvText("a\n1\n"))


def test_a_factory_that_returns_no_data_source_is_a_plugin_error() -> None:
    class Broken:
        @hookimpl
        def shoal_data_sources(self) -> Iterator[DataSourceSpec]:
            yield DataSourceSpec(
                name="broken", accepts=lambda o: isinstance(o, CsvText), factory=lambda o: [o]
            )

    with (
        temporary_plugin(Broken(), "broken"),
        pytest.raises(
            PluginError, match=r"Data source 'broken' returned list.*must return a shoal\.data\.DataSource"
        ),
    ):
        DataConnector.from_dataframe(CsvText("a\n1\n"))


def test_blocking_the_builtin_plugin_removes_its_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    from shoal.plugin_manager import set_plugin_manager

    monkeypatch.setenv("SHOAL_BLOCKED_PLUGINS", "data_sources")
    set_plugin_manager(None)
    with pytest.raises(
        ConfigError, match=r"pandas.core.frame.DataFrame. Installed data sources: \(none installed\)"
    ):
        DataConnector.from_dataframe(frame())


def test_importing_shoal_data_imports_no_framework() -> None:
    done = run_python(
        """
        import json, sys
        import shoal.data, shoal.plugins.data_sources
        from shoal.data import DataConnector, DataSource
        heavy = ("pandas", "polars", "pyarrow", "duckdb", "ray", "torch", "snowflake.snowpark")
        print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
        """
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []

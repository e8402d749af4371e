"""SQL-mode partitioning on a real Snowflake session (shoal.dpf.snowflake_partitioning).

A live Snowflake account cannot be reached from here, so these tests use a **stand-in session**:
it answers the statements the module sends (CREATE TEMPORARY STAGE, COPY INTO <location> with
PARTITION BY, LIST, GET, DROP STAGE) by running the same partition expression on DuckDB (with
HEX_ENCODE / TO_VARCHAR macros) and keeping the "Snowflake stage" in a folder. Everything on
shoal's side (identifier quoting, key encoding, file placement, errors, clean-up) is real.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest

from shoal.dpf import DPF
from shoal.dpf.partitioning import NULL_PARTITION
from shoal.dpf.snowflake_partitioning import folder_key, partition_expression, partition_with_snowflake
from shoal.stages import create_stage


class _Result:
    def __init__(self, rows: list[Any]) -> None:
        self.rows = rows

    def collect(self) -> list[Any]:
        return self.rows


class StandInSession:
    """Answers shoal's Snowflake statements from DuckDB and a folder of stages (see module doc)."""

    def __init__(self, root: Path, frame: pd.DataFrame) -> None:
        self.root = root
        self.statements: list[str] = []
        self.db = duckdb.connect()
        self.db.execute("CREATE MACRO HEX_ENCODE(x) AS upper(hex(x))")
        self.db.execute("CREATE MACRO TO_VARCHAR(x) AS CAST(x AS VARCHAR)")
        self.db.register("frame_view", frame)
        self.db.execute("CREATE TABLE frame AS SELECT * FROM frame_view")
        self.file = self

    def sql(self, text: str) -> _Result:
        from snowflake.snowpark import Row

        self.statements.append(text)
        verb, *rest = text.split()
        if text.startswith("CREATE TEMPORARY STAGE"):
            (self.root / rest[-1]).mkdir(parents=True)
            return _Result([])
        if text.startswith("DROP STAGE IF EXISTS"):
            shutil.rmtree(self.root / rest[-1], ignore_errors=True)
            return _Result([])
        if verb == "LIST":
            name, _, prefix = rest[0][1:].partition("/")
            base = self.root / name
            files = sorted(p for p in (base / prefix).rglob("*") if p.is_file())
            return _Result([Row(name=f"{name.lower()}/{p.relative_to(base).as_posix()}") for p in files])
        raise AssertionError(f"unexpected statement {text!r}")

    def get(self, location: str, target: str) -> list[Any]:
        """GET: files come down flat into the target folder."""
        self.statements.append(f"GET {location}")
        name, _, prefix = location[1:].partition("/")
        Path(target).mkdir(parents=True, exist_ok=True)
        for path in (self.root / name / prefix).rglob("*"):
            if path.is_file():
                shutil.copy(path, Path(target) / path.name)
        return []

    def copy_into(self, location: str, expression: str) -> None:
        name, _, prefix = location[1:].partition("/")
        out = self.root / name / prefix
        hive = self.root / "hive"
        self.db.execute(
            f"COPY (SELECT *, {expression} AS __part FROM frame) TO '{hive}' "
            "(FORMAT parquet, PARTITION_BY (__part), WRITE_PARTITION_COLUMNS false)"
        )
        for path in hive.rglob("*.parquet"):
            folder = path.parent.name.split("=", 1)[1]
            (out / folder).mkdir(parents=True, exist_ok=True)
            shutil.move(path, out / folder / "data_0_0_0.snappy.parquet")
        shutil.rmtree(hive)


class StandInFrame:
    """The parts of a Snowpark DataFrame the module uses; columns spelled as Snowflake does."""

    __module__ = "snowflake.snowpark.dataframe"

    def __init__(self, session: StandInSession, columns: list[str], rows: int) -> None:
        self.session = session
        self.columns = columns
        self.rows = rows
        self.write = self

    def limit(self, n: int) -> _Result:
        return _Result([object()] * min(n, self.rows))

    def copy_into_location(self, location: str, *, partition_by: Any, **options: Any) -> None:
        assert options == {"file_format_type": "parquet", "header": True, "overwrite": True}
        self.session.copy_into(location, partition_by._expression.name)


def frame_with(tmp_path: Path, frame: pd.DataFrame, columns: list[str] | None = None) -> StandInFrame:
    session = StandInSession(tmp_path / "snowflake", frame)
    return StandInFrame(session, columns or list(frame.columns), len(frame))


def test_partitions_by_a_column_with_the_engine_and_keeps_every_row(tmp_path: Path) -> None:
    keys = ["a/b", "", "ünï", None, "x y", "a/b"]
    frame = pd.DataFrame({"STORE": keys, "VALUE": [1, 2, 3, 4, 5, 6]})
    df = frame_with(tmp_path, frame)
    stage = create_stage("sfparts")

    parts = partition_with_snowflake(stage, "r1", "store", df)

    assert [p.partition_id for p in parts] == sorted(["", "a/b", "x y", "ünï", NULL_PARTITION])
    values: dict[str, list[int]] = {}
    for part in parts:
        for file in part.files:
            table = pq.read_table(stage.backend.local_path(file.split("/", 1)[1]))
            values.setdefault(part.partition_id, []).extend(table.column("VALUE").to_pylist())
            assert table.column_names == ["STORE", "VALUE"]
    assert values == {"a/b": [1, 6], "": [2], "ünï": [3], NULL_PARTITION: [4], "x y": [5]}
    statements = df.session.statements
    assert statements[0].startswith("CREATE TEMPORARY STAGE SHOAL_DPF_")
    assert statements[-1].startswith("DROP STAGE IF EXISTS SHOAL_DPF_")
    assert sum(s.startswith("GET ") for s in statements) == 5
    assert not list((tmp_path / "snowflake").iterdir()), "the transfer stage is dropped"


def test_integer_keys_decode_to_their_text(tmp_path: Path) -> None:
    df = frame_with(tmp_path, pd.DataFrame({"K": [10, 2, 2, 10, 7], "V": range(5)}))
    parts = partition_with_snowflake(create_stage("sfint"), "r", "K", df)
    assert [(p.partition_id, len(p.files)) for p in parts] == [("10", 1), ("2", 1), ("7", 1)]


def test_a_hostile_column_name_is_a_quoted_identifier() -> None:
    hostile = 'x") ; DROP TABLE t; --'
    assert partition_expression(hostile) == (
        "COALESCE('k' || HEX_ENCODE(TO_VARCHAR(\"x\"\") ; DROP TABLE t; --\")), 'null')"
    )
    assert partition_expression('"store"') == "COALESCE('k' || HEX_ENCODE(TO_VARCHAR(\"store\")), 'null')"
    assert folder_key("k" + "ü/1".encode().hex().upper()) == "ü/1"
    with pytest.raises(ValueError, match="unexpected partition folder"):
        folder_key("../etc")


def test_unknown_column_and_empty_input_fail_before_any_statement(tmp_path: Path) -> None:
    df = frame_with(tmp_path, pd.DataFrame({"STORE": [1], "V": [2]}))
    with pytest.raises(ValueError, match=r"'REGION' is not in the input; its columns are: STORE, V"):
        partition_with_snowflake(create_stage("sfbad"), "r", "REGION", df)
    empty = frame_with(tmp_path / "e", pd.DataFrame({"STORE": pd.Series([], dtype=int)}))
    with pytest.raises(ValueError, match="the input has no rows"):
        partition_with_snowflake(create_stage("sfempty"), "r", "STORE", empty)
    assert df.session.statements == []
    assert empty.session.statements == []


def test_dpf_run_sends_a_real_session_frame_to_snowflake_partitioning(tmp_path: Path) -> None:
    """DPF.run routes a non-local_testing Snowpark frame here; nothing is left on the stage on error."""
    df = frame_with(tmp_path, pd.DataFrame({"STORE": [1], "V": [2]}))
    with pytest.raises(ValueError, match=r"'NOPE' is not in the input; its columns are: STORE, V"):
        DPF(lambda data, context: None, "sfroute").run(partition_by="NOPE", snowpark_dataframe=df, run_id="r")
    from shoal.stages import get_stage

    assert get_stage("sfroute").list("") == []

"""The workspace's Snowpark service: real Snowpark sessions (fakesnow over DuckDB, in a process of
its own) that several processes share; loading local data without PUT; starting once, stopping
when idle, keeping the tables; and session lookup under the compatibility layer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from shoal.data import snowpark_service
from shoal.data.snowpark_service import embedded_session, is_embedded_session, stop_service


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("snowpark-home")
    previous = os.environ.get("SHOAL_HOME")
    os.environ["SHOAL_HOME"] = str(folder)
    yield folder
    os.environ["SHOAL_HOME"] = str(folder)
    stop_service()
    if previous is None:
        os.environ.pop("SHOAL_HOME", None)
    else:
        os.environ["SHOAL_HOME"] = previous


@pytest.fixture(scope="module")
def session(home: Path) -> Iterator[object]:
    opened = embedded_session()
    yield opened
    opened.close()


@pytest.fixture
def sales(session: object) -> object:
    """A SALES table of 30 rows, 10 per store, made anew for the test that uses it."""
    session.sql(  # type: ignore[attr-defined]
        "CREATE OR REPLACE TABLE SALES AS SELECT seq4() AS ID, 'S' || (seq4() % 3) AS STORE "
        "FROM TABLE(GENERATOR(ROWCOUNT => 30))"
    ).collect()
    return session


def run_python(code: str, home: Path, timeout: float = 120, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "SHOAL_HOME": str(home), **env},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_what_one_process_writes_another_reads(home: Path, sales: object) -> None:
    session = sales
    assert is_embedded_session(session)
    out = run_python(
        "from shoal.data.snowpark_service import embedded_session\n"
        "s = embedded_session()\n"
        "rows = s.table('SALES').group_by('STORE').count().sort('STORE').collect()\n"
        "s.sql(\"CREATE OR REPLACE TABLE FROM_CHILD AS SELECT 'child' AS WHO\").collect()\n"
        "print({r['STORE']: r['COUNT'] for r in rows})\n",
        home,
    )
    assert out.strip() == "{'S0': 10, 'S1': 10, 'S2': 10}"
    assert session.table("FROM_CHILD").collect()[0]["WHO"] == "child"  # type: ignore[attr-defined]


def test_create_dataframe_and_write_pandas_load_without_put(sales: object) -> None:
    from snowflake.snowpark.types import DoubleType, LongType, StringType, StructField, StructType

    s: object = sales
    rows = s.create_dataframe([[1, "a"], [2, None]], schema=["N", "S"]).collect()  # type: ignore[attr-defined]
    assert [(r["N"], r["S"]) for r in rows] == [(1, "a"), (2, None)]
    typed = StructType(
        [StructField("ID", LongType()), StructField("X", DoubleType()), StructField("T", StringType())]
    )
    frame = s.create_dataframe([(1, 0.5, "x")], schema=typed)  # type: ignore[attr-defined]
    assert [f.datatype.__class__.__name__ for f in frame.schema.fields] == [
        "LongType",
        "DoubleType",
        "StringType",
    ]
    many = pd.DataFrame({"K": range(2500), "V": [i / 2 for i in range(2500)]})
    loaded = s.create_dataframe(many).to_pandas()  # type: ignore[attr-defined]
    assert len(loaded) == 2500
    assert loaded["V"].sum() == many["V"].sum()
    odd = pd.DataFrame({'we"ird; DROP TABLE SALES --': [1, 2]})
    table = s.write_pandas(odd, "ODD; DROP TABLE SALES", auto_create_table=True)  # type: ignore[attr-defined]
    assert table.count() == 2
    s.write_pandas(odd, "ODD; DROP TABLE SALES")  # type: ignore[attr-defined]
    assert s.table('"ODD; DROP TABLE SALES"').count() == 4  # type: ignore[attr-defined]
    s.write_pandas(odd.head(1), "ODD; DROP TABLE SALES", overwrite=True)  # type: ignore[attr-defined]
    assert s.table('"ODD; DROP TABLE SALES"').count() == 1  # type: ignore[attr-defined]
    assert s.table("SALES").count() == 30  # type: ignore[attr-defined]


def test_one_service_for_processes_starting_at_once_and_it_stops_when_idle(tmp_path: Path) -> None:
    ask = (
        "import json\nfrom shoal.data.snowpark_service import service_address\nprint(service_address().pid)\n"
    )
    env = {**os.environ, "SHOAL_HOME": str(tmp_path), "SHOAL_SNOWPARK_IDLE_S": "3"}
    starters = [
        subprocess.Popen([sys.executable, "-c", ask], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(3)
    ]
    pids = {int(p.communicate(timeout=120)[0].strip()) for p in starters}
    assert len(pids) == 1
    (pid,) = pids
    record = json.loads((tmp_path / "snowpark" / "server.json").read_text())
    assert record["pid"] == pid
    run_python(
        "from shoal.data.snowpark_service import embedded_session\n"
        "embedded_session().sql('CREATE TABLE KEPT AS SELECT 7 AS N').collect()\n",
        tmp_path,
    )
    deadline = time.monotonic() + 30
    while (tmp_path / "snowpark" / "server.json").exists():
        assert time.monotonic() < deadline, "the idle service did not stop"
        time.sleep(0.2)
    out = run_python(
        "from shoal.data.snowpark_service import embedded_session, service_address, stop_service\n"
        "print(embedded_session().table('KEPT').collect()[0]['N'], service_address().pid)\n"
        "stop_service()\n",
        tmp_path,
        timeout=30,  # stop_service closes this process's sessions: its exit does not wait on them
    )
    kept, new_pid = out.split()
    assert kept == "7", "the tables outlive the service"
    assert int(new_pid) != pid


def test_a_service_that_cannot_start_says_where_its_log_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(tmp_path))
    monkeypatch.setenv("SHOAL_SNOWPARK_IDLE_S", "not-a-number")
    with pytest.raises(snowpark_service.ConfigError, match=r"did not start .*log: .*server\.log"):
        snowpark_service.service_address()


def test_session_lookup_under_the_compatibility_layer(home: Path, sales: object) -> None:
    out = run_python(
        "import shoal.compat.snowflake as compat\n"
        "compat.install(quiet=True)\n"
        "from snowflake.snowpark import Session\n"
        "from snowflake.snowpark.context import get_active_session\n"
        "from shoal.data.snowpark_service import is_embedded_session\n"
        "found = get_active_session()\n"
        "again = Session.builder.getOrCreate()\n"
        "print(is_embedded_session(found), again is found, found.table('SALES').count())\n",
        home,
    )
    assert out.split() == ["True", "True", "30"]
    out = run_python(
        "import shoal.compat.snowflake as compat\n"
        "compat.install(quiet=True)\n"
        "from snowflake.snowpark import Session\n"
        "local = Session.builder.config('local_testing', True).create()\n"
        "print(Session.builder.getOrCreate() is local)\n",
        home,
    )
    assert out.strip() == "True", "an active session is still the one found"


def test_statements_the_client_sends_are_rewritten_to_what_the_service_parses() -> None:
    from shoal.runtime.snowpark_rewrites import rewrite

    sent = 'CREATE    TABLE STORE_SUMMARY If  NOT  EXISTS ("STORE" STRING(16777216), "ROWS" BIGINT)'
    assert (
        rewrite(sent)
        == 'CREATE    TABLE IF NOT EXISTS STORE_SUMMARY ("STORE" STRING(16777216), "ROWS" BIGINT)'
    )
    assert rewrite('CREATE TEMPORARY TABLE db."My T" IF NOT EXISTS (a INT)') == (
        'CREATE TEMPORARY TABLE IF NOT EXISTS db."My T" (a INT)'
    )
    assert rewrite('CREATE SCOPED TEMPORARY TABLE "SHOAL"."PUBLIC"."T1" AS SELECT 1') == (
        'CREATE TABLE "SHOAL"."PUBLIC"."T1" AS SELECT 1'
    )
    for untouched in ("CREATE TABLE IF NOT EXISTS t (a INT)", "SELECT 'TABLE x IF NOT EXISTS'"):
        assert rewrite(untouched) == untouched


def test_save_as_table_append_creates_then_appends(session: Any) -> None:
    session.sql("DROP TABLE IF EXISTS APPENDED").collect()
    frame = session.create_dataframe(pd.DataFrame({"K": [1, 2]}))
    frame.write.mode("append").save_as_table("APPENDED")
    frame.write.mode("append").save_as_table("APPENDED")
    assert sorted(r["K"] for r in session.table("APPENDED").collect()) == [1, 1, 2, 2]


def test_random_split_parts_are_disjoint_and_cover_every_row(session: Any) -> None:
    frame = session.create_dataframe([[i] for i in range(200)], schema=["A"])
    first, second = frame.random_split([0.5, 0.5], seed=1)
    left = {row["A"] for row in first.collect()}
    right = {row["A"] for row in second.collect()}
    assert not left & right
    assert left | right == set(range(200))
    assert 40 < len(left) < 160, "both parts get rows"


def test_a_window_ordered_by_a_random_expression_shuffles_the_rows(session: Any) -> None:
    """DuckDB refuses volatile window orderings; the service orders by a seeded hash of the row."""
    orders = set()
    for _ in range(4):
        rows = session.sql(
            "SELECT ID, ROW_NUMBER() OVER (ORDER BY RANDOM()) AS R "
            "FROM (SELECT seq4() AS ID FROM TABLE(GENERATOR(ROWCOUNT => 20)))"
        ).collect()
        assert sorted(row["R"] for row in rows) == list(range(1, 21)), "a permutation of the rows"
        assert sorted(row["ID"] for row in rows) == list(range(20))
        orders.add(tuple(row["ID"] for row in sorted(rows, key=lambda row: row["R"])))
    assert len(orders) > 1, "another order on each run"
    per_group = session.sql(
        "SELECT ID % 2 AS G, ROW_NUMBER() OVER (PARTITION BY G ORDER BY RANDOM()) AS R "
        "FROM (SELECT seq4() AS ID FROM TABLE(GENERATOR(ROWCOUNT => 10))) AS NUMBERS QUALIFY R <= 2"
    ).collect()
    assert sorted((row["G"], row["R"]) for row in per_group) == [(0, 1), (0, 2), (1, 1), (1, 2)]


def test_random_window_order_names_an_unnamed_from_and_hashes_its_row() -> None:
    from sqlglot import parse_one

    from shoal.runtime.snowpark_rewrites import ROWS_ALIAS, random_window_order

    unnamed = random_window_order(
        parse_one("SELECT ID, ROW_NUMBER() OVER (ORDER BY RANDOM()) FROM (SELECT 1 AS ID)", read="snowflake")
    ).sql("duckdb")
    assert f"ORDER BY HASH({ROWS_ALIAS}, " in unnamed
    assert unnamed.endswith(f"AS {ROWS_ALIAS}")
    named = random_window_order(
        parse_one("SELECT *, RANK() OVER (ORDER BY RANDOM()) FROM SALES AS S", read="snowflake")
    ).sql("duckdb")
    assert "ORDER BY HASH(S, " in named
    seeded = random_window_order(
        parse_one("SELECT *, RANK() OVER (ORDER BY RANDOM(42)) FROM SALES", read="snowflake")
    ).sql("duckdb")
    assert "ORDER BY HASH(SALES, 42)" in seeded, "RANDOM(seed) keeps its seed: the order repeats"
    untouched = "SELECT ID FROM T ORDER BY RANDOM()"
    assert "RANDOM()" in random_window_order(parse_one(untouched, read="snowflake")).sql("snowflake")

"""What the workspace's Snowpark service costs, each figure next to an anchor of the same run.

    .venv/bin/python bench/snowpark_service.py [--rows 10000] [--repeats 20]

1. First session: the service's start (a Python process with fakesnow, uvicorn and sqlglot) and
   the login; then a later session (login only). Anchor: opening a DuckDB file.
2. One small query (``SELECT`` on a 1,000-row table, 10 rows back) through a session, against
   the same query in DuckDB directly: what the protocol and the SQL translation add.
3. ``create_dataframe`` of a pandas frame (``--rows`` rows, 3 columns), loaded by parameterised
   INSERTs, against DuckDB reading the same frame into a table.
4. ``to_pandas`` of that table through a session, against DuckDB's ``df()``.
5. A second process reading a table the first one wrote (interpreter start included), against
   a second process that only starts Python and imports Snowpark.

Runs in its own temporary SHOAL_HOME and stops the service it started. Timings are for reading,
not for tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(fn, repeats: int = 1) -> float:  # type: ignore[no-untyped-def]
    values = []
    for _ in range(repeats):
        began = time.perf_counter()
        fn()
        values.append(time.perf_counter() - began)
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="shoal-bench-snowpark-"))
    os.environ["SHOAL_HOME"] = str(home)

    import duckdb
    import pandas as pd

    from shoal.data.snowpark_service import embedded_session, stop_service

    try:
        began = time.perf_counter()
        session = embedded_session()
        first = time.perf_counter() - began
        later = timed(lambda: embedded_session().close(), 5)
        duck_file = str(home / "anchor.duckdb")
        duck_open = timed(lambda: duckdb.connect(duck_file).close(), 5)
        print(f"first session (starts the service): {first:.2f} s; later sessions: {later * 1000:.0f} ms")
        print(f"  anchor, opening a DuckDB file: {duck_open * 1000:.1f} ms")

        session.sql(
            "CREATE OR REPLACE TABLE SMALL AS SELECT seq4() AS ID FROM TABLE(GENERATOR(ROWCOUNT => 1000))"
        ).collect()
        duck = duckdb.connect(duck_file)
        duck.execute("CREATE OR REPLACE TABLE small AS SELECT range AS id FROM range(1000)")
        query = "SELECT ID FROM SMALL WHERE ID < 10 ORDER BY ID"
        via_session = timed(lambda: session.sql(query).collect(), args.repeats)
        direct = timed(lambda: duck.execute(query.lower()).fetchall(), args.repeats)
        print(
            f"one small query: {via_session * 1000:.1f} ms through a session, "
            f"{direct * 1000:.2f} ms in DuckDB "
            f"({via_session / direct:.0f}x)"
        )

        frame = pd.DataFrame(
            {"K": range(args.rows), "X": [i / 3 for i in range(args.rows)], "S": ["s"] * args.rows}
        )
        loaded = timed(lambda: session.create_dataframe(frame).count(), 3)
        duck.register("frame", frame)
        duck_loaded = timed(lambda: duck.execute("CREATE OR REPLACE TABLE f AS SELECT * FROM frame"), 3)
        print(
            f"create_dataframe of {args.rows} rows: {loaded:.2f} s ({args.rows / loaded:,.0f} rows/s); "
            f"DuckDB from pandas {duck_loaded * 1000:.1f} ms ({loaded / duck_loaded:.0f}x)"
        )
        session.write_pandas(frame, "BIG", auto_create_table=True, overwrite=True)
        read = timed(lambda: session.table("BIG").to_pandas(), 3)
        duck.execute("CREATE OR REPLACE TABLE big AS SELECT * FROM frame")
        duck_read = timed(lambda: duck.execute("SELECT * FROM big").df(), 3)
        print(
            f"to_pandas of {args.rows} rows: {read * 1000:.0f} ms; "
            f"DuckDB {duck_read * 1000:.1f} ms ({read / duck_read:.0f}x)"
        )

        reader = (
            "from shoal.data.snowpark_service import embedded_session\n"
            "assert embedded_session().table('BIG').count() > 0\n"
        )
        env = {**os.environ}
        other = timed(lambda: subprocess.run([sys.executable, "-c", reader], check=True, env=env), 3)
        bare = timed(
            lambda: subprocess.run([sys.executable, "-c", "import snowflake.snowpark"], check=True, env=env),
            3,
        )
        print(
            f"another process reads that table: {other:.2f} s; a process that only imports Snowpark "
            f"{bare:.2f} s (+{other - bare:.2f} s)"
        )
        duck.close()
        session.close()  # before the service stops: the connector's cancel timers would call it
    finally:
        stop_service()


if __name__ == "__main__":
    main()

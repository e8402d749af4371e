"""The embedded warehouse: one DuckDB database file, ``$SHOAL_HOME/warehouse.duckdb``.

It is what ``DataConnector.from_sql(query)`` queries when no session is given, and what a DPF
partition's ``context.with_session`` hands out when the run's input was not Snowpark.

DuckDB lets **one process** open a database file for writing, or any number of processes open it
read-only, never both. So: open, use, close promptly (``with connect_warehouse() as con: ...``),
and read with ``read_only=True`` wherever writing is not needed. Opening waits up to ``timeout``
seconds for another process to let go, then fails with a message naming the file.

Runs on the driver and on workers of a local compute pool (same machine, same file).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from shoal.errors import ConfigError
from shoal.workspace import shoal_home

WAREHOUSE_FILE = "warehouse.duckdb"
DEFAULT_LOCK_TIMEOUT = 10.0
_SAME_PROCESS_CONFLICT = "different configuration"


def warehouse_path() -> Path:
    """The warehouse's database file (it may not exist yet)."""
    return shoal_home() / WAREHOUSE_FILE


def _is_lock_error(exc: BaseException) -> bool:
    return "lock" in str(exc).lower()


def open_database(
    path: str | os.PathLike[str], *, read_only: bool, timeout: float = DEFAULT_LOCK_TIMEOUT
) -> Any:
    """Open the DuckDB file at ``path``; return a ``duckdb.DuckDBPyConnection`` (close it when done).

    ``read_only=True`` on a file that this same process already holds open for writing would be
    refused by DuckDB ("different configuration"); the existing read-write database is shared
    instead, which is safe within one process. A file locked by another process is retried until
    ``timeout`` seconds have passed.
    """
    import duckdb

    target = os.fspath(path)
    if read_only and not os.path.exists(target):
        raise ConfigError(
            f"DuckDB database {target} does not exist, so it cannot be opened read-only. Create it first "
            f"(for the warehouse: `with shoal.data.warehouse.connect_warehouse() as con: con.execute(...)`)."
        )
    deadline = time.monotonic() + max(0.0, timeout)
    delay = 0.05
    while True:
        try:
            return duckdb.connect(target, read_only=read_only)
        except duckdb.ConnectionException as exc:
            if read_only and _SAME_PROCESS_CONFLICT in str(exc):
                return duckdb.connect(target)
            raise
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() >= deadline:
                mode = "read-only" if read_only else "for writing"
                raise ConfigError(
                    f"Cannot open DuckDB database {target} {mode}: another process holds it "
                    f"(DuckDB allows one writer process, or many read-only ones). Close that connection, "
                    f"or open read-only everywhere you only read. DuckDB said: {exc}"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def connect_warehouse(read_only: bool = False, *, timeout: float = DEFAULT_LOCK_TIMEOUT) -> Any:
    """A DuckDB connection to the warehouse, created if missing. Use it as a context manager::

    with connect_warehouse() as con:
        con.execute("CREATE TABLE sales AS SELECT * FROM 'sales.parquet'")
    """
    path = warehouse_path()
    if read_only and not path.exists():
        open_database(path, read_only=False, timeout=timeout).close()  # an empty warehouse
    return open_database(path, read_only=read_only, timeout=timeout)

"""DuckDB data sources: a query on a database file, and a relation (a lazy DuckDB query object).

* :class:`DuckDBQuerySource` keeps a database **path** and a **query**. Each read opens the file
  read-only, streams the result with ``to_arrow_reader`` and closes it. It pickles as
  ``(path, query)``, so a worker on the same machine (or with the same file) runs the query
  itself. ``from_sql(query)`` on the warehouse and on a connection to a database file give this.
* :class:`DuckDBRelationSource` keeps a relation (``con.sql(...)``, or ``from_sql`` on an
  in-memory connection). On the driver it streams from the relation; connections do not pickle,
  so pickling runs the query once and ships the rows as Arrow data.

Queries must be one statement that returns rows (``SELECT``, ``WITH``, ``FROM``, ``VALUES``...).

Runs on the driver and on workers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shoal.data.arrow_sources import DEFAULT_BATCH_ROWS, _shape
from shoal.data.source import DataSource
from shoal.data.warehouse import open_database, warehouse_path
from shoal.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa


def _short(query: str, width: int = 80) -> str:
    flat = " ".join(query.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def check_query(connection: Any, query: str) -> str:
    """Return ``query`` without a trailing ``;`` if it is one statement that returns rows, else raise."""
    if not isinstance(query, str) or not query.strip():
        raise ConfigError(f"from_sql needs a SQL query string, got {query!r}")
    import duckdb

    try:
        statements = connection.extract_statements(query)
    except duckdb.Error as exc:
        raise ConfigError(f"DuckDB cannot parse the query {_short(query)!r}: {exc}") from exc
    if len(statements) != 1:
        raise ConfigError(
            f"from_sql takes exactly one query, got {len(statements)} statements in {_short(query)!r}; "
            f"run the others first (e.g. with connect_warehouse())"
        )
    kind = str(statements[0].type).rsplit(".", 1)[-1]
    if kind != "SELECT":
        raise ConfigError(
            f"from_sql needs a query that returns rows (SELECT, WITH, FROM, VALUES...), got a {kind} "
            f"statement: {_short(query)!r}. Run statements with a connection "
            f"(`with shoal.data.warehouse.connect_warehouse() as con: con.execute(...)`) and read the result "
            f"with a SELECT."
        )
    return query.strip().rstrip(";").strip()


def database_path(connection: Any) -> str | None:
    """The file of a DuckDB connection's current database, or ``None`` for an in-memory one."""
    rows = connection.sql(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()
    path = rows[0][0] if rows else None
    return str(path) if path else None


class DuckDBQuerySource(DataSource):
    """A query on a DuckDB database file, run read-only by whichever process reads it."""

    kind = "duckdb query"

    def __init__(self, database: str | os.PathLike[str], query: str) -> None:
        self.database = os.path.abspath(os.fspath(database))
        connection = open_database(self.database, read_only=True)
        try:
            self.query = check_query(connection, query)
            import duckdb

            try:
                self._schema: pa.Schema | None = connection.sql(self.query).limit(0).to_arrow_table().schema
            except duckdb.Error as exc:
                raise ConfigError(
                    f"DuckDB cannot run {_short(self.query)!r} on {self.database}: {exc}"
                ) from exc
        finally:
            connection.close()

    def schema(self) -> pa.Schema:
        if self._schema is None:
            connection = open_database(self.database, read_only=True)
            try:
                self._schema = connection.sql(self.query).limit(0).to_arrow_table().schema
            finally:
                connection.close()
        return self._schema

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        connection = open_database(self.database, read_only=True)
        try:
            reader = connection.sql(self.query).to_arrow_reader(batch_size or DEFAULT_BATCH_ROWS)
            for batch in reader:
                if batch.num_rows:
                    yield batch
        finally:
            connection.close()

    def count_rows(self) -> int:
        connection = open_database(self.database, read_only=True)
        try:
            rows = connection.sql(f"SELECT count(*) FROM ({self.query}) AS shoal_query").fetchall()
            return int(rows[0][0]) if rows else 0
        finally:
            connection.close()

    def describe(self) -> str:
        where = "warehouse" if self.database == str(warehouse_path()) else self.database
        return f"{self.kind} on {where}: {_short(self.query)}"

    def __getstate__(self) -> dict[str, Any]:
        return {"database": self.database, "query": self.query}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.database, self.query = state["database"], state["query"]
        self._schema = None


class DuckDBRelationSource(DataSource):
    """A DuckDB relation: streamed on the driver, shipped to workers as its rows (Arrow)."""

    kind = "duckdb relation"

    def __init__(self, relation: Any, *, origin: str = "DuckDB relation") -> None:
        self.relation: Any = relation
        self.origin = origin
        self.table: pa.Table | None = None
        self._schema: pa.Schema = relation.limit(0).to_arrow_table().schema

    def schema(self) -> pa.Schema:
        return self._schema

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        size = batch_size or DEFAULT_BATCH_ROWS
        if self.table is not None:
            batches: Any = self.table.to_batches(max_chunksize=size)
        else:
            batches = self.relation.to_arrow_reader(size)
        for batch in batches:
            if batch.num_rows:
                yield batch

    def to_arrow(self) -> pa.Table:
        if self.table is not None:
            return self.table
        return self.relation.to_arrow_table()

    def num_rows(self) -> int | None:
        return None if self.table is None else int(self.table.num_rows)

    def count_rows(self) -> int:
        if self.table is not None:
            return int(self.table.num_rows)
        rows = self.relation.aggregate("count(*)").fetchall()
        return int(rows[0][0]) if rows else 0

    def describe(self) -> str:
        if self.table is not None:
            return f"{self.origin}: {_shape(self.table.num_rows, self.table.num_columns)} (materialized)"
        query = ""
        with contextlib.suppress(Exception):  # some relations cannot render their SQL
            query = ": " + _short(self.relation.sql_query())
        return f"{self.origin} ({len(self._schema)} columns, streamed on the driver){query}"

    def __getstate__(self) -> dict[str, Any]:
        return {"table": self.to_arrow(), "origin": self.origin}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.table = state["table"]
        self.origin = state["origin"]
        self.relation = None
        self._schema = self.table.schema


def accepts_duckdb_relation(obj: object) -> bool:
    from shoal.data.frame_sources import is_instance_by_name

    return is_instance_by_name(obj, "duckdb", "DuckDBPyRelation") or is_instance_by_name(
        obj, "_duckdb", "DuckDBPyRelation"
    )


def duckdb_relation_source(relation: Any) -> DuckDBRelationSource:
    """A ``duckdb.DuckDBPyRelation`` (``con.sql("SELECT ...")``, ``duckdb.read_parquet(...)``)."""
    return DuckDBRelationSource(relation)


def query_source(connection: Any, query: str) -> DataSource:
    """The source for ``from_sql(query, session=connection)`` on a DuckDB connection.

    A connection to a database file becomes a :class:`DuckDBQuerySource` (path and query: it
    pickles and is re-run read-only where it is read). If the query needs something only that
    connection has (a temporary table, an attached database, a registered frame), or the
    database is in memory, it becomes a :class:`DuckDBRelationSource` on the connection.
    """
    import duckdb

    query = check_query(connection, query)
    path = database_path(connection)
    if path and os.path.exists(path):
        try:
            return DuckDBQuerySource(path, query)
        except (ValueError, duckdb.Error):
            pass  # e.g. a temporary table of this connection: read through the connection itself
    try:
        relation = connection.sql(query)
    except duckdb.Error as exc:
        raise ConfigError(f"DuckDB cannot run {_short(query)!r}: {exc}") from exc
    return DuckDBRelationSource(relation, origin="DuckDB query")

"""Snowpark data sources.

A Snowpark ``DataFrame`` holds its session, which does not pickle, so:

* on a **local_testing** session (``Session.builder.config("local_testing", True)``) the frame is
  materialized once, on the driver, with ``to_pandas()`` and kept as Arrow data;
* on a session of the **workspace's Snowpark service** (``embedded_session()``) the frame must
  compile to one query; the caller's session saves its rows in the service as a table with a
  row number (:func:`save_in_service`: the rows never enter the caller, and the query may name
  the session's temporary tables), and every reader, a training rank for its range of row
  numbers, reads the table through its own session of the service
  (:class:`ServiceTableSource`); the table is dropped when the caller's source is collected;
* on a **real** session the reference product's rule applies: the frame must compile to exactly
  one query and no post actions (else ``ValueError``). The source keeps the query text; the
  driver streams it with ``session.sql(query).to_arrow_batches()`` and a worker re-binds to its
  own active session when it reads. This path cannot be tested without a Snowflake account: it
  is kept small and its tests stop at the checks that need no account.

Column names are Snowflake's, exactly as ``df.columns`` gives them: a column that is a quoted
identifier keeps its quotes (``'"feature_a"'`` for a pandas column ``feature_a``), as the
reference's ``DataConnector`` hands them to training code (``row['"feature_a"']``). Snowpark's
own ``to_pandas()`` drops the quotes; every source here puts them back.

Runs on the driver and on workers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from shoal.data.arrow_sources import ArrowTableSource
from shoal.data.frame_sources import is_instance_by_name
from shoal.data.source import DataSource

if TYPE_CHECKING:
    import pyarrow as pa


def accepts_snowpark(obj: object) -> bool:
    return is_instance_by_name(obj, "snowflake.snowpark", "DataFrame")


def is_local_testing(session: Any) -> bool:
    """True for a Snowpark session created with ``config("local_testing", True)``."""
    connection = getattr(session, "_conn", None)
    return type(connection).__name__ == "MockServerConnection"


def session_kind(session: Any) -> str:
    """``"local_testing"``, ``"embedded"`` (a session of the workspace's Snowpark service) or
    ``"snowflake"`` (connected to an account)."""
    from shoal.data.snowpark_service import is_embedded_session

    if is_local_testing(session):
        return "local_testing"
    return "embedded" if is_embedded_session(session) else "snowflake"


def snowpark_source(df: Any) -> DataSource:
    """The source for a Snowpark DataFrame (see the module docstring)."""
    session = getattr(df, "session", None) or getattr(df, "_session", None)
    kind = "local_testing" if session is None else session_kind(session)
    if kind == "local_testing":
        return ArrowTableSource(_snowpark_to_arrow(df), origin="Snowpark DataFrame (local_testing)")
    if kind == "embedded":
        # saved here, by the caller's session, in the service: its query may name the session's
        # temporary tables, which no other session (a worker's) sees
        return save_in_service(df, session)
    queries = df.queries
    check_single_query(queries)
    return SnowparkQuerySource(queries["queries"][0], session, columns=list(df.columns))


def snowflake_spelling(name: str, columns: list[str]) -> str | None:
    """The frame's own spelling of column ``name`` under Snowflake's identifier rules: as given,
    as a quoted identifier (``feature_a`` names ``"feature_a"``), or upper-cased (an unquoted
    identifier); None when no column matches."""
    for candidate in (name, f'"{name}"', name.upper()):
        if candidate in columns:
            return candidate
    return None


def check_single_query(queries: dict[str, Any]) -> None:
    """The reference product's rule for ``from_dataframe``: one query and no post actions."""
    count, post = len(queries.get("queries", [])), len(queries.get("post_actions", []))
    if count != 1 or post:
        raise ValueError(
            f"DataFrames that contain multiple queries or post actions are not supported (this one has "
            f"{count} queries and {post} post actions). Save it as a table first "
            f"(df.write.save_as_table(name)) and pass session.table(name)."
        )


def _snowpark_to_arrow(df: Any) -> pa.Table:
    import pyarrow as pa

    return _as_named(pa.Table.from_pandas(df.to_pandas(), preserve_index=False), list(df.columns))


def _as_named(data: Any, columns: list[str] | None) -> Any:
    """An Arrow table or batch with ``columns`` (``df.columns``) as its column names."""
    if not columns or list(data.schema.names) == columns:
        return data
    if len(columns) != len(data.schema.names):
        raise RuntimeError(
            f"Snowpark returned {len(data.schema.names)} columns ({', '.join(data.schema.names)}) for a "
            f"DataFrame whose columns are {', '.join(columns)}"
        )
    return data.rename_columns(columns)


def _named_batches(
    source: Any, tables: Iterator[Any], columns: list[str] | None, batch_size: int | None
) -> Iterator[pa.RecordBatch]:
    """The non-empty batches of ``tables`` with ``columns`` as their names; the first table's
    schema becomes ``source._schema`` when it has none yet."""
    for table in tables:
        table = _as_named(table, columns)
        if source._schema is None:
            source._schema = table.schema
        for batch in table.to_batches(max_chunksize=batch_size):
            if batch.num_rows:
                yield batch


class SnowparkQuerySource(DataSource):
    """One Snowflake query, run on the driver's session or, after unpickling, on the active session."""

    kind = "snowpark query"

    def __init__(self, query: str, session: Any = None, columns: list[str] | None = None) -> None:
        self.query = query
        self._session = session
        self._columns = columns  # df.columns: Snowflake's names, quotes included
        self._schema: pa.Schema | None = None

    def session(self) -> Any:
        """The session to run the query on: the driver's, or this process's active one."""
        if self._session is None:
            from snowflake.snowpark.context import get_active_session

            self._session = get_active_session()
        return self._session

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        tables = self.session().sql(self.query).to_arrow_batches()
        yield from _named_batches(self, tables, self._columns, batch_size)

    def schema(self) -> pa.Schema:
        if self._schema is None:
            import pyarrow as pa

            tables = list(self.session().sql(f"SELECT * FROM ({self.query}) LIMIT 0").to_arrow_batches())
            self._schema = _as_named(tables[0], self._columns).schema if tables else pa.schema([])
        return self._schema

    def describe(self) -> str:
        flat = " ".join(self.query.split())
        return f"{self.kind}: {flat[:77] + '...' if len(flat) > 80 else flat}"

    def __getstate__(self) -> dict[str, Any]:
        return {"query": self.query, "schema": self._schema, "columns": self._columns}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.query, self._schema, self._session = state["query"], state["schema"], None
        self._columns = state.get("columns")


class ServiceTableSource(DataSource):
    """The rows of a Snowpark DataFrame of the workspace's Snowpark service, saved once in the
    service as a table with a row number (:func:`save_in_service`); a shard reads a range of row
    numbers, in their order, through its own session of the service. Only the process that
    saved the table drops it, when its source (and every shard of it there) is garbage-collected or
    the process exits. Readers use a connector connection, not a Snowpark session."""

    kind = "Snowpark service table"

    def __init__(
        self,
        database: str,
        schema: str,
        table: str,
        columns: list[str],
        rows: int,
        *,
        start: int = 0,
        stop: int | None = None,
    ) -> None:
        self.database, self.schema_name, self.table = database, schema, table
        self.columns, self.rows = columns, rows
        self.start, self.stop = start, rows if stop is None else stop
        self._schema: pa.Schema | None = None
        self._connection: Any = None
        self._owner: ServiceTableSource | None = None  # the source that drops the table (this process)

    @property
    def qualified(self) -> str:
        from shoal.data.snowpark_loading import quote_identifier

        return ".".join(quote_identifier(part) for part in (self.database, self.schema_name, self.table))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_connection": None, "_owner": None}

    def connection(self) -> Any:
        """This process's connection to the service: a plain Snowflake connector connection, not a
        Snowpark session, so that reading never changes which session is the process's active one
        (``get_active_session()`` in the user's code)."""
        if self._connection is None:
            import snowflake.connector

            from shoal.data.snowpark_service import connection_options

            self._connection = snowflake.connector.connect(
                **connection_options(self.database, self.schema_name)
            )
        return self._connection

    def _frames(self, query: str) -> Iterator[Any]:
        cursor = self.connection().cursor()
        try:
            cursor.execute(query)
            yield from cursor.fetch_pandas_batches()
        finally:
            cursor.close()

    def rows_between(self, start: int, stop: int) -> ServiceTableSource:
        """Rows ``[start, stop)`` of this table's (one shard)."""
        shard = ServiceTableSource(
            self.database, self.schema_name, self.table, self.columns, self.rows, start=start, stop=stop
        )
        shard._schema = self._schema
        shard._owner = self._owner or self  # the table lives while a shard of it does
        return shard

    def _query(self) -> str:
        return (
            f"SELECT {', '.join(self.columns)} FROM {self.qualified} "
            f"WHERE {ROW_NUMBER} >= {int(self.start)} AND {ROW_NUMBER} < {int(self.stop)} "
            f"ORDER BY {ROW_NUMBER}"
        )

    def iter_batches(self, batch_size: int | None = None) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        tables = (pa.Table.from_pandas(frame, preserve_index=False) for frame in self._frames(self._query()))
        yield from _named_batches(self, tables, self.columns, batch_size)

    def schema(self) -> pa.Schema:
        if self._schema is None:
            import pyarrow as pa

            cursor = self.connection().cursor()
            try:  # one row gives the types (an empty result has no typed batch)
                cursor.execute(f"SELECT {', '.join(self.columns)} FROM {self.qualified} LIMIT 1")
                frame = cursor.fetch_pandas_all()
            finally:
                cursor.close()
            self._schema = _as_named(pa.Table.from_pandas(frame, preserve_index=False), self.columns).schema
        return self._schema

    def num_rows(self) -> int:
        return self.stop - self.start

    def describe(self) -> str:
        where = "" if (self.start, self.stop) == (0, self.rows) else f"rows {self.start} to {self.stop} of "
        return f"{where}{self.kind} {self.qualified}: {self.rows} rows (a Snowpark DataFrame's, saved there)"


#: the column :func:`save_in_service` numbers rows in (0, 1, ...); never handed to a reader
ROW_NUMBER = '"__SHOAL_ROW"'


def save_in_service(df: Any, session: Any) -> ServiceTableSource:
    """Save ``df``'s rows (a DataFrame of a session of the workspace's Snowpark service) in a new
    table of the session's database and schema, numbered; the rows never enter this process. The
    DataFrame must compile to one query (the reference product's rule for ``from_dataframe``)."""
    import secrets
    import weakref

    check_single_query(df.queries)
    columns = list(df.columns)
    database = _unquoted(session.get_current_database())
    schema = _unquoted(session.get_current_schema())
    table = f"SHOAL_INPUT_{secrets.token_hex(6).upper()}"
    source = ServiceTableSource(database, schema, table, columns, 0)
    query = df.queries["queries"][0]
    session.sql(
        f"CREATE TABLE {source.qualified} AS "
        f"SELECT *, ROW_NUMBER() OVER () - 1 AS {ROW_NUMBER} FROM ({query})"
    ).collect()
    weakref.finalize(source, _drop_table, source.qualified, database, schema)
    rows = int(session.sql(f"SELECT COUNT(*) FROM {source.qualified}").collect()[0][0])
    source.rows, source.stop = rows, rows
    return source


def _unquoted(name: str | None) -> str:
    """A name as the service gives it (``"SHOAL"`` or ``SHOAL``), without its quotes."""
    if not name:
        raise ValueError(
            "the Snowpark session has no current database or schema; call session.use_database()"
        )
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        return name[1:-1].replace('""', '"')
    return name


def _drop_table(qualified: str, database: str, schema: str) -> None:
    """Drop a saved input (at garbage collection or exit), if the service still runs."""
    import contextlib

    import snowflake.connector

    from shoal.data.snowpark_service import _running, connection_options

    if _running() is None:
        return
    with (
        contextlib.suppress(Exception),
        snowflake.connector.connect(**connection_options(database, schema)) as c,
    ):
        c.cursor().execute(f"DROP TABLE IF EXISTS {qualified}")

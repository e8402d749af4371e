"""Snowpark data sources.

A Snowpark ``DataFrame`` holds its session, which does not pickle, so:

* on a **local_testing** session (``Session.builder.config("local_testing", True)``) the frame is
  materialized once, on the driver, with ``to_pandas()`` and kept as Arrow data;
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
        # read here, once: its query may name the session's temporary tables, which no other
        # session (a worker's) sees
        return ArrowTableSource(_snowpark_to_arrow(df), origin="Snowpark DataFrame (Snowpark service)")
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
        for table in self.session().sql(self.query).to_arrow_batches():
            table = _as_named(table, self._columns)
            if self._schema is None:
                self._schema = table.schema
            for batch in table.to_batches(max_chunksize=batch_size):
                if batch.num_rows:
                    yield batch

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

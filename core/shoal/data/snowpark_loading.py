"""Loading local data into a session of the workspace's Snowpark service.

Snowpark's ``create_dataframe`` and ``write_pandas`` stage data with ``PUT`` (pandas) or build a
``VALUES`` query the service cannot run (lists). Sessions returned by
:func:`shoal.data.snowpark_service.embedded_session` use the class built here instead: the data
becomes a pandas frame, a table is created with column types taken from the given schema or
from the frame's dtypes, and the rows go in through parameterised ``INSERT`` statements of
:data:`BATCH_ROWS` rows. Column names and table names are quoted identifiers, never spliced as
raw text.

Runs wherever an embedded session is used (driver, job payload, workers).
"""

from __future__ import annotations

import functools
import math
import secrets
from typing import Any

BATCH_ROWS = 1000

_SNOWPARK_TYPES = {
    "LongType": "BIGINT",
    "IntegerType": "BIGINT",
    "ShortType": "BIGINT",
    "ByteType": "BIGINT",
    "DoubleType": "DOUBLE",
    "FloatType": "DOUBLE",
    "BooleanType": "BOOLEAN",
    "DateType": "DATE",
    "TimestampType": "TIMESTAMP_NTZ",
    "StringType": "VARCHAR",
}


def quote_identifier(name: str) -> str:
    """``name`` as a Snowflake quoted identifier (an already quoted one is kept)."""
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        return name
    return '"' + name.replace('"', '""') + '"'


def quote_table_name(name: str | list[str]) -> str:
    parts = name if isinstance(name, list) else name.split(".")
    return ".".join(quote_identifier(part) for part in parts)


def _sql_type_of_dtype(dtype: Any) -> str:
    by_kind = {"i": "BIGINT", "u": "BIGINT", "f": "DOUBLE", "b": "BOOLEAN", "M": "TIMESTAMP_NTZ"}
    return by_kind.get(getattr(dtype, "kind", "O"), "VARCHAR")


def _sql_type_of_field(datatype: Any) -> str:
    name = type(datatype).__name__
    if name == "DecimalType":
        return f"NUMBER({datatype.precision}, {datatype.scale})"
    return _SNOWPARK_TYPES.get(name, "VARCHAR")


def _plain(value: Any) -> Any:
    """A value the connector can bind: numpy scalars become Python ones, NaN and NaT None."""
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def frame_and_types(data: Any, schema: Any = None) -> tuple[Any, list[str]]:
    """``data`` (a pandas frame, or rows: lists, tuples, dicts or scalars) as a pandas frame with
    the SQL type of every column."""
    import pandas as pd

    fields = list(getattr(schema, "fields", []) or [])
    names = [f.name for f in fields] if fields else (list(schema) if schema is not None else None)
    if isinstance(data, pd.DataFrame):
        frame = data if names is None else data.set_axis(names, axis=1)
    else:
        rows = [list(row.values()) if isinstance(row, dict) else row for row in data]
        rows = [row if isinstance(row, list | tuple) else [row] for row in rows]
        if names is None:
            first = next(iter(data), None)
            width = len(rows[0]) if rows else 0
            names = list(first.keys()) if isinstance(first, dict) else [f"_{i + 1}" for i in range(width)]
        frame = pd.DataFrame(rows, columns=names)
    names = [str(c).strip('"') for c in frame.columns]
    if fields:
        types = [_sql_type_of_field(f.datatype) for f in fields]
    else:
        types = [_sql_type_of_dtype(frame[c].dtype) for c in frame.columns]
    return frame.set_axis(names, axis=1), types


def load_frame(
    session: Any, frame: Any, types: list[str], table: str | list[str], *, temporary: bool, replace: bool
) -> int:
    """Create ``table`` for ``frame`` (replacing it with ``replace``) and insert its rows."""
    target = quote_table_name(table)
    columns = ", ".join(f"{quote_identifier(c)} {t}" for c, t in zip(frame.columns, types, strict=True))
    kind = "TEMPORARY TABLE" if temporary else "TABLE"
    verb = "CREATE OR REPLACE" if replace else "CREATE"
    session.sql(f"{verb} {kind} {target} ({columns})").collect()
    return insert_rows(session, frame, target)


def insert_rows(session: Any, frame: Any, target: str) -> int:
    """Insert the rows of ``frame`` into the (quoted) table ``target``; return how many."""
    width = len(frame.columns)
    if not width:
        return 0
    rows = [[_plain(v) for v in row] for row in frame.itertuples(index=False, name=None)]
    placeholder = "(" + ", ".join("?" * width) + ")"
    for start in range(0, len(rows), BATCH_ROWS):
        batch = rows[start : start + BATCH_ROWS]
        values = ", ".join([placeholder] * len(batch))
        params = [value for row in batch for value in row]
        session.sql(f"INSERT INTO {target} VALUES {values}", params=params).collect()
    return len(rows)


@functools.cache
def embedded_session_class() -> type:
    """Snowpark's ``Session`` with ``create_dataframe`` and ``write_pandas`` loading through
    ``INSERT`` (built on first use, so that importing shoal does not import Snowpark)."""
    from snowflake.snowpark import Session

    base: Any = Session  # the overrides take any data Snowpark's do, typed loosely

    class EmbeddedSession(base):
        """A Snowpark session of the workspace's Snowpark service."""

        def create_dataframe(self, data: Any, schema: Any = None, **kwargs: Any) -> Any:
            frame, types = frame_and_types(data, schema)
            name = f"SHOAL_DATAFRAME_{secrets.token_hex(6).upper()}"
            load_frame(self, frame, types, name, temporary=True, replace=False)
            return self.table(quote_identifier(name))

        createDataFrame = create_dataframe

        def write_pandas(self, df: Any, table_name: str, *args: Any, **kwargs: Any) -> Any:
            database, schema = kwargs.get("database"), kwargs.get("schema")
            parts = [p for p in (database, schema) if p] + [table_name]
            name = parts if kwargs.get("quote_identifiers", True) else ".".join(parts).upper()
            frame, types = frame_and_types(df)
            overwrite = bool(kwargs.get("overwrite", False))
            temporary = kwargs.get("table_type", "") in ("temp", "temporary")
            if kwargs.get("auto_create_table", False) or overwrite:
                load_frame(self, frame, types, name, temporary=temporary, replace=overwrite)
            else:
                insert_rows(self, frame, quote_table_name(name))
            return self.table(quote_table_name(name))

    return EmbeddedSession

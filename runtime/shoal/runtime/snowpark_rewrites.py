"""Statements the Snowflake client sends that the service's SQL parser does not take, rewritten
to the equivalent form it does, before fakesnow parses them.

Each text rewrite is a regular expression over the statement text, kept to the exact shape the
client (Snowpark) emits, with why it is needed. :func:`random_window_order` is a transform of the
parsed statement (sqlglot), run before fakesnow's own. :func:`install` wraps fakesnow's cursor
``execute`` and ``_transform`` once, in the service's process.

Runs in the workspace's Snowpark service (:mod:`shoal.runtime.snowpark_server`).
"""

from __future__ import annotations

import re
import secrets
from typing import Any

#: The alias :func:`random_window_order` gives an unnamed ``FROM`` (a subquery, a table function).
ROWS_ALIAS = "SHOAL_ROWS"

_NAME = r'(?:"(?:[^"]|"")*"|[\w$]+)'

#: (pattern, replacement, why)
REWRITES: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(
            rf"^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:(?:LOCAL|GLOBAL|TEMP|TEMPORARY|VOLATILE|TRANSIENT)\s+)*"
            rf"TABLE)\s+({_NAME}(?:\.{_NAME}){{0,2}})\s+IF\s+NOT\s+EXISTS\b",
            re.IGNORECASE,
        ),
        r"\1 IF NOT EXISTS \2",
        "Snowpark's save_as_table(mode='append') writes `CREATE TABLE t IF NOT EXISTS (...)`, which "
        "Snowflake takes and sqlglot does not",
    ),
    (
        re.compile(r"^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?)SCOPED\s+TEMP(?:ORARY)?\s+", re.IGNORECASE),
        r"\1",
        "Snowpark's own tables (DataFrame.random_split, cache_result) are `SCOPED TEMPORARY` and named "
        "by database and schema; DuckDB keeps temporary tables in its `temp` catalog only, so they "
        "become ordinary tables (SNOWPARK_TEMP_TABLE_*), which Snowpark drops when it no longer needs "
        "them and which outlive the session otherwise",
    ),
]


def rewrite(statement: str) -> str:
    """``statement`` in the form the service parses (unchanged when no rewrite applies)."""
    for pattern, replacement, _ in REWRITES:
        statement = pattern.sub(replacement, statement, count=1)
    return statement


def random_window_order(expression: Any) -> Any:
    """``RANDOM()`` in a window's ``ORDER BY`` (``ROW_NUMBER() OVER (ORDER BY RANDOM())``, how
    programs shuffle or sample rows) becomes ``HASH(<the row>, <random seed>)``.

    DuckDB refuses volatile window orderings ("ORDER BY window expressions cannot be volatile").
    A hash of the whole row of the ``FROM`` (DuckDB takes a table's name as its row) with a seed
    drawn for each statement (``RANDOM(seed)``: that seed) orders rows at random, differently
    each time, and DuckDB sees it as a plain expression. Rows equal in every column get the same
    key: ties, in any order. An unnamed ``FROM`` is given the alias ``SHOAL_ROWS``; a ``FROM``
    that joins hashes its first relation's row."""
    from sqlglot import exp

    for window in list(expression.find_all(exp.Window)):
        order = window.args.get("order")
        random_calls = list(order.find_all(exp.Rand)) if order is not None else []
        select = window.find_ancestor(exp.Select)
        source = select.args.get("from_") if select is not None else None
        if not random_calls or source is None:
            continue
        relation = source.this
        named = isinstance(relation, exp.Table) and not isinstance(relation.this, exp.Func)
        name = relation.alias_or_name if named else relation.alias
        if not name:
            relation.set("alias", exp.TableAlias(this=exp.to_identifier(ROWS_ALIAS)))
            name = ROWS_ALIAS
        for call in random_calls:
            given = call.this  # RANDOM(42): the same order on every run, as the seed promises
            seed = given if isinstance(given, exp.Literal) else exp.Literal.number(secrets.randbits(62))
            call.replace(exp.Anonymous(this="HASH", expressions=[exp.column(name), seed]))
    return expression


def install() -> None:
    """Rewrite every statement before fakesnow reads it (idempotent): its server parses a
    statement once to classify it, then its cursor executes it; both see the rewritten text."""
    import fakesnow.server as fakesnow_server
    from fakesnow.cursor import FakeSnowflakeCursor

    original_execute = FakeSnowflakeCursor.execute
    if getattr(original_execute, "_shoal_rewrites", False):
        return
    original_parse = fakesnow_server.parse_one

    def execute(self: Any, command: str, *args: Any, **kwargs: Any) -> Any:
        return original_execute(self, rewrite(command), *args, **kwargs)

    def parse_one(sql: str, *args: Any, **kwargs: Any) -> Any:
        return original_parse(rewrite(sql), *args, **kwargs)

    original_transform = FakeSnowflakeCursor._transform

    def transform(self: Any, expression: Any, *args: Any, **kwargs: Any) -> Any:
        return original_transform(self, random_window_order(expression), *args, **kwargs)

    execute._shoal_rewrites = True  # type: ignore[attr-defined]
    FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]
    FakeSnowflakeCursor._transform = transform  # type: ignore[method-assign]
    fakesnow_server.parse_one = parse_one  # type: ignore[assignment]

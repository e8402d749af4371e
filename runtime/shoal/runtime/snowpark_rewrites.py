"""Statements the Snowflake client sends that the service's SQL parser does not take, rewritten
to the equivalent form it does, before fakesnow parses them.

Each rewrite is a regular expression over the statement text, kept to the exact shape the client
(Snowpark) emits, with why it is needed. :func:`install` wraps fakesnow's cursor ``execute``
once, in the service's process.

Runs in the workspace's Snowpark service (:mod:`shoal.runtime.snowpark_server`).
"""

from __future__ import annotations

import re
from typing import Any

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

    execute._shoal_rewrites = True  # type: ignore[attr-defined]
    FakeSnowflakeCursor.execute = execute  # type: ignore[method-assign]
    fakesnow_server.parse_one = parse_one  # type: ignore[assignment]

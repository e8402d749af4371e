"""Snowpark ``local_testing`` sessions under the compatibility layer: where Snowpark's local
testing mode cannot do something, the error says so and names shoal's alternative.

``Session.sql`` on a ``local_testing`` session raises :class:`~shoal.errors.NotSupportedError`
(a ``NotImplementedError``, as Snowpark's own) that points to the embedded DuckDB warehouse.
Sessions connected to an account are untouched. Installed and removed with the layer.

Runs on the driver and in jobs started from it.
"""

from __future__ import annotations

from typing import Any

from shoal.data.snowpark_sources import is_local_testing
from shoal.errors import NotSupportedError

WAREHOUSE_HINT = (
    "the embedded DuckDB warehouse: shoal.data.warehouse.connect_warehouse() for SQL, "
    "DataConnector.from_sql('SELECT ...') to feed DPF and the estimators"
)
_original: dict[str, Any] = {}


def patch_sessions() -> None:
    """Wrap ``Session.sql`` (idempotent); a no-op when Snowpark is not installed."""
    try:
        from snowflake.snowpark import Session
    except ImportError:
        return
    if "sql" in _original:
        return
    original = Session.sql
    _original["sql"] = original

    def sql(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, query, *args, **kwargs)
        except NotImplementedError as exc:
            if not is_local_testing(self):
                raise
            raise NotSupportedError(
                f"Session.sql is not supported by shoal: a Snowpark local_testing session cannot run SQL "
                f"({exc}); use {WAREHOUSE_HINT} instead."
            ) from exc

    sql.__doc__ = original.__doc__
    Session.sql = sql  # type: ignore[method-assign]


def unpatch_sessions() -> None:
    original = _original.pop("sql", None)
    if original is not None:
        from snowflake.snowpark import Session

        Session.sql = original  # type: ignore[method-assign]

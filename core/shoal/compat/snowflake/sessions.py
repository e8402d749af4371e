"""Snowpark sessions under the compatibility layer.

Where Snowpark's local testing mode cannot do something, the error says so and names shoal's
alternative. Code that looks a session up (``get_active_session()``,
``Session.builder.getOrCreate()``) and finds none gets a session of the workspace's Snowpark
service (:mod:`shoal.data.snowpark_service`), in the driver, a job or a worker alike.

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
    "a session of the workspace's Snowpark service (shoal.data.snowpark_service.embedded_session(), "
    "or Session.builder.getOrCreate() under the compatibility layer), which runs SQL; or the embedded "
    "DuckDB warehouse: shoal.data.warehouse.connect_warehouse() for SQL, "
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

    _patch_session_lookup()


def _patch_session_lookup() -> None:
    """``get_active_session()`` and ``Session.builder.getOrCreate()`` with nothing to find (no
    active session, no connection options given) return a session of the workspace's Snowpark
    service, as code inside Snowflake gets the account's session (decision 44); in a job, the
    job's own session (:mod:`shoal.data.job_session`)."""
    from shoal.data import job_session

    job_session.set_fallback(job_session.EMBEDDED_DEFAULTS)
    job_session.patch_lookup()


def unpatch_sessions() -> None:
    from snowflake.snowpark import Session

    original = _original.pop("sql", None)
    if original is not None:
        Session.sql = original  # type: ignore[method-assign]
    from shoal.data import job_session

    job_session.set_fallback(None)
    job_session.unpatch_lookup()

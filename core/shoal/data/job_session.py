"""The Snowpark session a job's code finds with ``get_active_session()``.

In the reference product every job, on every instance, finds an active session that sees the
submitter's tables. shoal gives each job a :class:`SessionDescriptor` (the environment variable
``SHOAL_JOB_SESSION``: a kind, a database and a schema, never a secret), taken from the session
the job was submitted with (``session=``, else the submitter's one active Snowpark session),
else the workspace's Snowpark service's defaults:

- ``embedded``: a session of the workspace's Snowpark service, on the same database and schema,
  so it sees the submitter's tables;
- ``local_testing``: a new ``local_testing`` session (its tables live in the submitter's memory:
  the job cannot see them);
- ``default``: ``Session.builder.getOrCreate()`` with this machine's default connection (a
  session connected to an account carries no credentials the job could reuse).

:func:`install` makes the lookup lazy and cheap: a post-import hook (``wrapt``) patches
``snowflake.snowpark.context.get_active_session`` and ``Session.builder.getOrCreate()`` when,
and only if, the code imports Snowpark. A lookup that finds no active session, or only sessions
this module opened, gets the session for the descriptor in the environment *at that moment*
(opened on first use, then kept), so a warm executor that runs partitions of several jobs hands
each the right one. With no descriptor, Snowpark's own behaviour is untouched.

Runs on the driver (:func:`describe`, the compatibility layer's :func:`set_fallback`) and in
every process of a job: the payload, its Ray workers (:mod:`shoal.runtime.job_worker_setup`),
DPF partition workers and training workers (:func:`install`).
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal

#: The job's session descriptor (JSON), in the payload's and its workers' environment.
SESSION_VAR = "SHOAL_JOB_SESSION"
SessionKind = Literal["embedded", "local_testing", "default"]


@dataclass(frozen=True)
class SessionDescriptor:
    """Which session a job's lookups open (see the module docstring)."""

    kind: SessionKind
    database: str | None = None
    schema: str | None = None

    def to_env(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_env(cls, text: str) -> SessionDescriptor:
        data = json.loads(text)
        if data.get("kind") not in ("embedded", "local_testing", "default"):
            raise ValueError(f"{SESSION_VAR} names an unknown session kind: {text!r}")
        return cls(kind=data["kind"], database=data.get("database"), schema=data.get("schema"))


EMBEDDED_DEFAULTS = SessionDescriptor("embedded")


def _active_sessions() -> set[Any]:
    """Snowpark's active sessions of this process (empty when Snowpark was never imported)."""
    module = sys.modules.get("snowflake.snowpark.session")
    if module is None:
        return set()
    with module._session_management_lock:
        return set(module._active_sessions)


def describe(session: Any | None) -> SessionDescriptor:
    """The descriptor of ``session``, else of the caller's one active Snowpark session, else the
    Snowpark service's defaults (driver, at submit)."""
    if session is None:
        active = _active_sessions()
        session = next(iter(active)) if len(active) == 1 else None
    if session is None:
        return EMBEDDED_DEFAULTS
    from shoal.data.snowpark_sources import session_kind

    kind = session_kind(session)
    if kind == "embedded":
        connection = session._conn._conn
        return SessionDescriptor("embedded", connection.database, connection.schema)
    return SessionDescriptor("local_testing" if kind == "local_testing" else "default")


def open_session(descriptor: SessionDescriptor) -> Any:
    """A new session for ``descriptor``; it becomes one of Snowpark's active sessions."""
    if descriptor.kind == "embedded":
        from shoal.data.snowpark_service import embedded_session

        return embedded_session(descriptor.database, descriptor.schema)
    from snowflake.snowpark import Session

    if descriptor.kind == "local_testing":
        return Session.builder.config("local_testing", True).create()
    get_or_create = _original.get("getOrCreate", Session.SessionBuilder.getOrCreate)
    return get_or_create(Session.builder)


_original: dict[str, Any] = {}
_opened: dict[SessionDescriptor, Any] = {}
_fallback: SessionDescriptor | None = None
_lock = threading.RLock()  # opening a session imports Snowpark, whose import hook patches
_hook_registered = False


def set_fallback(descriptor: SessionDescriptor | None) -> None:
    """The descriptor to use where the environment has none (the compatibility layer sets the
    Snowpark service's defaults on the driver; ``None`` removes it)."""
    global _fallback
    _fallback = descriptor


def current_descriptor() -> SessionDescriptor | None:
    """The descriptor a lookup uses now: the environment's, else the fallback."""
    text = os.environ.get(SESSION_VAR)
    return SessionDescriptor.from_env(text) if text else _fallback


def session_for(descriptor: SessionDescriptor) -> Any:
    """This process's session for ``descriptor``: opened on first use, then the same one (a
    session argument of the job and ``get_active_session()`` are one object)."""
    with _lock:
        return _session_for(descriptor)


def _session_for(descriptor: SessionDescriptor) -> Any:
    session = _opened.get(descriptor)
    if session is None or session._conn.is_closed():
        session = _opened[descriptor] = open_session(descriptor)
    return session


def _provided_session() -> Any | None:
    """The session for the current descriptor when Snowpark has no active session of its own;
    None when the lookup is Snowpark's to answer."""
    descriptor = current_descriptor()
    if descriptor is None:
        return None
    with _lock:
        ours = {id(s) for s in _opened.values()}
        if any(id(s) not in ours for s in _active_sessions()):
            return None  # the code opened or was handed a session of its own
        return _session_for(descriptor)


def patch_lookup(module: Any = None) -> None:
    """Wrap Snowpark's session lookups (idempotent; the post-import hook of :func:`install`)."""
    import snowflake.snowpark.context as snowpark_context
    from snowflake.snowpark import Session

    with _lock:
        if "get_active_session" in _original:
            return
        original_lookup = snowpark_context.get_active_session
        original_get_or_create = Session.SessionBuilder.getOrCreate
        _original["get_active_session"] = original_lookup
        _original["getOrCreate"] = original_get_or_create

    # functools.wraps keeps the original's module and name, so cloudpickle pickles the patched
    # function by reference and the other process finds its own (patched or not)
    @functools.wraps(original_lookup)
    def get_active_session() -> Any:
        provided = _provided_session()
        return original_lookup() if provided is None else provided

    @functools.wraps(original_get_or_create)
    def get_or_create(self: Any) -> Any:
        if getattr(self, "_options", None):  # connection options given: the code's own session
            return original_get_or_create(self)
        provided = _provided_session()
        return original_get_or_create(self) if provided is None else provided

    snowpark_context.get_active_session = get_active_session
    Session.SessionBuilder.getOrCreate = get_or_create  # type: ignore[method-assign]


def unpatch_lookup() -> None:
    """Put Snowpark's own lookups back (the compatibility layer's removal, tests)."""
    with _lock:
        lookup = _original.pop("get_active_session", None)
        get_or_create = _original.pop("getOrCreate", None)
    if lookup is not None:
        import snowflake.snowpark.context as snowpark_context

        snowpark_context.get_active_session = lookup
    if get_or_create is not None:
        from snowflake.snowpark import Session

        Session.SessionBuilder.getOrCreate = get_or_create  # type: ignore[method-assign]


def install() -> None:
    """Patch the lookups once Snowpark is imported in this process (at once if it already is)."""
    global _hook_registered
    if "get_active_session" in _original:
        return
    if "snowflake.snowpark" in sys.modules:
        patch_lookup()
        return
    if not _hook_registered:
        import wrapt

        # the package, not its context module: Snowpark imports that half-way through its own
        # start, and any import of a Snowpark module runs the package's first
        wrapt.register_post_import_hook(patch_lookup, "snowflake.snowpark")
        _hook_registered = True

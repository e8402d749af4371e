"""Snowpark sessions over the workspace's embedded warehouse service.

:func:`embedded_session` returns a real Snowpark ``Session`` connected to the workspace's
Snowpark service (:mod:`shoal.runtime.snowpark_server`, fakesnow over DuckDB on 127.0.0.1).
Unlike a ``local_testing`` session, it runs ``session.sql`` and every process of the workspace
sees the same tables: the driver, a job's payload, DPF workers, a partition's ``with_session``.
The service starts on first use (a few seconds, most of it imports) and stops by itself when
idle; its databases stay in ``$SHOAL_HOME/snowpark/databases``. It is a separate store from
``warehouse.duckdb``: DuckDB lets one process write a file, and the service holds its files
open while it runs.

Runs on the driver and on the workers of a local pool (same machine, same workspace).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shoal.errors import ConfigError
from shoal.extras import require
from shoal.workspace import workspace_dir

#: The account name embedded sessions use; :func:`is_embedded_session` recognises them by it.
EMBEDDED_ACCOUNT = "shoal_embedded"
DEFAULT_DATABASE = "SHOAL"
DEFAULT_SCHEMA = "PUBLIC"
ENV_IDLE = "SHOAL_SNOWPARK_IDLE_S"
DEFAULT_IDLE_S = 1800.0
START_TIMEOUT_S = 60.0
#: the running service's address (pid, port), written by ``shoal.runtime.snowpark_server``
SERVER_FILE = "server.json"


@dataclass(frozen=True)
class ServiceAddress:
    """Where the workspace's Snowpark service listens."""

    pid: int
    port: int


def service_folder() -> Path:
    return workspace_dir("snowpark")


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def _running() -> ServiceAddress | None:
    from shoal import processes

    try:
        record = json.loads((service_folder() / SERVER_FILE).read_text())
        address = ServiceAddress(int(record["pid"]), int(record["port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not processes.alive([address.pid]):  # a zombie counts as gone
        return None
    return address if _answers(address.port) else None


def running_service() -> ServiceAddress | None:
    """The running service of the workspace, or None (nothing is started)."""
    return _running()


def service_address() -> ServiceAddress:
    """The running service, started (in its own session, logging to ``snowpark/server.log``)
    when there is none. Several processes asking at once start one: a file lock orders them."""
    from filelock import FileLock

    require(["fakesnow", "snowflake.snowpark"], "the workspace's Snowpark service")
    found = _running()
    if found is not None:
        return found
    folder = service_folder()
    with FileLock(str(folder / "start.lock"), timeout=START_TIMEOUT_S):
        found = _running()
        if found is not None:
            return found
        (folder / SERVER_FILE).unlink(missing_ok=True)
        idle = os.environ.get(ENV_IDLE, str(DEFAULT_IDLE_S))
        log_path = folder / "server.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "shoal.runtime.snowpark_server", str(folder), idle],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            found = _running()
            if found is not None:
                return found
            if process.poll() is not None:
                break
            time.sleep(0.05)
        process.kill()
        tail = log_path.read_text(errors="replace")[-2000:]
        raise ConfigError(
            f"The workspace's Snowpark service did not start (exit {process.poll()}); log: {log_path}\n{tail}"
        )


def connection_options(database: str | None = None, schema: str | None = None) -> dict[str, Any]:
    """Connection options for the Snowflake connector or ``Session.builder.configs(...)``."""
    address = service_address()
    return {
        "account": EMBEDDED_ACCOUNT,
        "user": "shoal",
        "password": "shoal",
        "host": "127.0.0.1",
        "port": address.port,
        "protocol": "http",
        "database": database or DEFAULT_DATABASE,
        "schema": schema or DEFAULT_SCHEMA,
        "session_parameters": {
            "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
            # statements fakesnow does not know that the client sends by itself (Session.close)
            "nop_regexes": [r"^select system\$cancel_all_queries.*"],
        },
        "network_timeout": 60,
    }


#: Sessions :func:`embedded_session` made in this process and not collected yet.
_OPEN_SESSIONS: weakref.WeakSet[Any] = weakref.WeakSet()


def embedded_session(database: str | None = None, schema: str | None = None) -> Any:
    """A new Snowpark ``Session`` over the workspace's Snowpark service (started if needed).

    It is Snowpark's own ``Session``, with ``create_dataframe`` and ``write_pandas`` loading the
    data through parameterised ``INSERT`` statements (:mod:`shoal.data.snowpark_loading`): the
    Snowflake client would stage it with ``PUT``, which the service does not take."""
    require(["snowflake.snowpark", "fakesnow"], "a Snowpark session of the workspace's service")
    from snowflake.snowpark import Session

    from shoal.data.snowpark_loading import embedded_session_class

    session = Session.builder.configs(connection_options(database, schema)).create()
    session.__class__ = embedded_session_class()
    _OPEN_SESSIONS.add(session)
    return session


def is_embedded_session(session: Any) -> bool:
    """True for a Snowpark session connected to a shoal Snowpark service."""
    server_connection = getattr(session, "_conn", None)
    connector = getattr(server_connection, "_conn", None)
    return getattr(connector, "account", None) == EMBEDDED_ACCOUNT and getattr(connector, "host", None) == (
        "127.0.0.1"
    )


def stop_service() -> bool:
    """Stop the workspace's Snowpark service if it runs; True when one was stopped."""
    from shoal import processes

    found = _running()
    if found is None:
        return False
    # this process's sessions first: Snowpark closes open sessions at exit with a request that
    # would wait out the network timeout (60 s) against a stopped service
    for session in list(_OPEN_SESSIONS):
        with contextlib.suppress(Exception):
            session.close()
        with contextlib.suppress(Exception):
            atexit.unregister(session._close_at_exit)
    _OPEN_SESSIONS.clear()
    processes.terminate([found.pid], grace_s=10)
    return True

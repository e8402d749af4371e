"""The workspace's Snowpark service: ``python -m shoal.runtime.snowpark_server FOLDER IDLE_S``.

It answers Snowflake's client protocol on 127.0.0.1 with fakesnow, which runs the SQL on DuckDB
through sqlglot, so the real Snowpark client (and the Snowflake connector) talk to it as to an
account. Every process of the workspace (the driver, job payloads, DPF workers, a partition's
``with_session``) connects to the same service and sees the same tables. Its databases are
DuckDB files in ``FOLDER/databases`` (one per Snowflake database), so they outlive the service.

Once it listens it writes ``FOLDER/server.json`` (pid, port, start time); the client
(:mod:`shoal.data.snowpark_service`) starts it on first use and reads that file. It stops by
itself after ``IDLE_S`` seconds without a request, and removes ``server.json`` when it stops.

Runs on the machine of the workspace, in a background process of its own (its own session).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from shoal.data.snowpark_service import SERVER_FILE
from shoal.localfiles import write_atomically

DATABASES_FOLDER = "databases"


class ActivityClock:
    """An ASGI wrapper that notes when the last request came."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.last = time.monotonic()
        await self.app(scope, receive, send)


def serve(folder: Path, idle_s: float) -> None:
    """Serve until idle for ``idle_s`` seconds (or SIGTERM/SIGINT)."""
    import fakesnow.server as fakesnow_server
    import uvicorn
    from fakesnow.instance import FakeSnow

    from shoal.runtime import snowpark_rewrites

    databases = folder / DATABASES_FOLDER
    databases.mkdir(parents=True, exist_ok=True)
    # one DuckDB instance for every session, over the database files: fakesnow's default keeps
    # them in memory, and a second instance over the same files would be refused their lock
    fakesnow_server.shared_fs = FakeSnow(db_path=databases)
    snowpark_rewrites.install()
    clock = ActivityClock(fakesnow_server.app)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            clock, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
        )
    )

    def announce_then_watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.02)
        record = {"pid": os.getpid(), "port": port, "started_at": time.time()}
        write_atomically(folder / SERVER_FILE, json.dumps(record))
        while not server.should_exit:
            if time.monotonic() - clock.last > idle_s:
                server.should_exit = True
            time.sleep(1.0)

    def exit_on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    # uvicorn handles SIGTERM while it serves, then restores this handler and raises the signal
    # again: this way the record below is removed on a signalled stop too
    signal.signal(signal.SIGTERM, exit_on_signal)
    threading.Thread(target=announce_then_watch, name="announce", daemon=True).start()
    try:
        server.run(sockets=[listener])
    finally:
        # DuckDB's files first: a service started once the record is gone must find them free
        fakesnow_shutdown()
        record_file = folder / SERVER_FILE
        try:
            if json.loads(record_file.read_text()).get("pid") == os.getpid():
                record_file.unlink()
        except (OSError, ValueError):
            pass


def main() -> None:
    code = 0
    try:
        serve(Path(sys.argv[1]), float(sys.argv[2]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        # a thread of a library (the Snowflake connector's, fakesnow imports it) would hold the
        # interpreter's exit for seconds; the record is removed and DuckDB's files are closed
        fakesnow_shutdown()
        os._exit(code)


def fakesnow_shutdown() -> None:
    """Close the shared DuckDB instance, so that its write-ahead log is checkpointed."""
    import fakesnow.server as fakesnow_server

    # exiting anyway: should closing fail, DuckDB replays its log on the next start
    with contextlib.suppress(Exception):
        fakesnow_server.shared_fs.duck_conn.close()


if __name__ == "__main__":
    main()

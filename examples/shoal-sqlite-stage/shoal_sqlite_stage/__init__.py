"""Example shoal plugin: a stage backend that keeps a stage's files in one SQLite database.

URL form: ``sqlite:///absolute/path/to/file.db``. Every file is one row; a write becomes
visible when its transaction commits, which makes writes atomic.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from typing import BinaryIO

from shoal import hookimpl
from shoal.contributions import StageBackendSpec
from shoal.stages.backend import AtomicWriter, PathKind, StageBackend


class _ClosedBuffer(io.BytesIO):
    """An in-memory file that keeps its content after close (AtomicWriter closes before commit)."""

    final = b""

    def close(self) -> None:
        if not self.closed:
            self.final = self.getvalue()
        super().close()


class SqliteStageBackend(StageBackend):
    """Files of a stage as rows ``(path, data)`` in a SQLite table."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        prefix = "sqlite://"
        if not url.startswith(prefix) or not url[len(prefix) :].startswith("/"):
            raise ValueError(f"expected sqlite:///absolute/path.db, got {url!r}")
        self.db_path = url[len(prefix) :]
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, data BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path, timeout=30)

    def kind(self, path: str) -> PathKind | None:
        with self._connect() as db:
            if path and db.execute("SELECT 1 FROM files WHERE path = ?", (path,)).fetchone():
                return "file"
            like = f"{path}/%" if path else "%"
            if db.execute("SELECT 1 FROM files WHERE path LIKE ? LIMIT 1", (like,)).fetchone():
                return "dir"
        return None

    def iter_files(self, prefix: str) -> Iterator[str]:
        like = f"{prefix}/%" if prefix else "%"
        with self._connect() as db:
            rows = db.execute("SELECT path FROM files WHERE path LIKE ? ORDER BY path", (like,)).fetchall()
        for (path,) in rows:
            yield path

    def open_read(self, path: str) -> BinaryIO:
        with self._connect() as db:
            row = db.execute("SELECT data FROM files WHERE path = ?", (path,)).fetchone()
        if row is None:
            raise FileNotFoundError(path)
        return io.BytesIO(row[0])

    def open_write(self, path: str) -> AtomicWriter:
        buffer = _ClosedBuffer()

        def commit() -> None:
            with self._connect() as db:  # the transaction commits on leaving the block
                db.execute("INSERT OR REPLACE INTO files (path, data) VALUES (?, ?)", (path, buffer.final))

        return AtomicWriter(buffer, commit=commit, abort=lambda: None)

    def remove_file(self, path: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM files WHERE path = ?", (path,))

    def remove_dir(self, path: str) -> None:
        with self._connect() as db:
            if path:
                db.execute("DELETE FROM files WHERE path LIKE ?", (f"{path}/%",))
            else:
                db.execute("DELETE FROM files")


@hookimpl
def shoal_stage_backends() -> Iterator[StageBackendSpec]:
    yield StageBackendSpec(
        name="sqlite",
        schemes=("sqlite",),
        factory=SqliteStageBackend,
        description="stage inside a SQLite file",
    )

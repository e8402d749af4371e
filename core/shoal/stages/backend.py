"""The contract between a stage and the storage behind it.

A :class:`StageBackend` stores the files of one stage. Backends are contributed by plugins
through the ``shoal_stage_backends`` hook, chosen by the URL scheme of the stage
(``file``, ``memory``, ``s3``, ...). The :class:`~shoal.stages.Stage` object in front of a
backend does everything that is the same for all backends: name and path validation,
confinement, glob matching, put/get of local files. A backend only moves bytes.

Every ``path`` a backend receives is already validated: a relative POSIX path with no ``..``,
no empty parts and no leading ``/``; ``""`` means the stage root.

Runs wherever stage files are read or written: the driver and every worker.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal

from shoal.localfiles import TEMP_PREFIX

PathKind = Literal["file", "dir"]

__all__ = ["TEMP_PREFIX", "AtomicWriter", "PathKind", "StageBackend"]


class AtomicWriter(io.RawIOBase):
    """A writable binary file whose content appears under its final name only on success.

    ``close()`` commits (the file appears whole under its final name, replacing any earlier
    version); ``abort()`` drops everything written. Used as a context manager, an exception
    inside the ``with`` block aborts. Backends build it from an open temporary file and two
    callbacks.
    """

    def __init__(self, raw: BinaryIO, commit: Callable[[], None], abort: Callable[[], None]) -> None:
        super().__init__()
        self._raw = raw
        self._commit = commit
        self._abort = abort
        self._done = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._raw.write(data)

    def flush(self) -> None:
        if not self._raw.closed:
            self._raw.flush()

    def abort(self) -> None:
        """Drop what was written; the final name keeps its earlier content (or stays absent)."""
        if self._done:
            return
        self._done = True
        try:
            self._raw.close()
        finally:
            self._abort()
            super().close()

    def close(self) -> None:
        """Commit what was written under the final name."""
        if self._done:
            return
        self._done = True
        try:
            self._raw.close()
            self._commit()
        except BaseException:
            self._abort()
            raise
        finally:
            super().close()

    def __del__(self) -> None:
        # A writer dropped without close() (an exception outside a with block) must not publish
        # half a file: only an explicit close() commits.
        if not getattr(self, "_done", True):
            with contextlib.suppress(Exception):
                self.abort()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class StageBackend(ABC):
    """Stores the files of one stage. Subclass it and contribute it with a ``StageBackendSpec``."""

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    def kind(self, path: str) -> PathKind | None:
        """Return ``"file"``, ``"dir"`` or ``None`` when nothing is at ``path``."""

    @abstractmethod
    def iter_files(self, prefix: str) -> Iterator[str]:
        """Yield every file under the folder ``prefix`` (recursively), as stage-relative paths.

        Skips in-flight writes (names starting with :data:`TEMP_PREFIX`).
        """

    @abstractmethod
    def open_read(self, path: str) -> BinaryIO:
        """Open the file at ``path`` for binary reading."""

    def read_whole(self, path: str) -> bytes:
        """The whole content of the file at ``path``, as one consistent version of it.

        The default reads :meth:`open_read` to the end. Backends where a file can be replaced
        while a reader streams it (object stores: a read in ranges fails once the object it
        started on is gone) override this with one request for the whole file."""
        with self.open_read(path) as handle:
            return handle.read()

    @abstractmethod
    def open_write(self, path: str) -> AtomicWriter:
        """Open ``path`` for an atomic binary write, creating parent folders as needed."""

    @abstractmethod
    def remove_file(self, path: str) -> None:
        """Delete the file at ``path``."""

    @abstractmethod
    def remove_dir(self, path: str) -> None:
        """Delete the folder at ``path`` and everything under it."""

    def check_confined(self, path: str) -> None:  # noqa: B027 - optional hook, default is a no-op
        """Raise :class:`~shoal.errors.StagePathError` if ``path`` resolves outside the stage.

        Backends with links (local folders) override this; object stores have nothing to check.
        """

    def local_path(self, path: str) -> str | None:
        """Return a local filesystem path for ``path`` when the backend is a local folder, else None."""
        return None

    def temp_files(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """Yield ``(path, size in bytes, modification time)`` of every temporary file of a write
        (a name starting with :data:`TEMP_PREFIX`) under the folder ``prefix``, paths relative to
        the stage root; for ``shoal stage gc``. This default serves local-folder backends (it
        follows no link); other backends override it, or have no temporary files to show."""
        base = self.local_path("")
        if base is None:
            return
        start = os.path.join(base, *prefix.split("/")) if prefix else base
        for folder, _dirs, files in os.walk(start):
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                full = os.path.join(folder, name)
                try:
                    info = os.lstat(full)
                except FileNotFoundError:  # committed or removed while we looked
                    continue
                if stat.S_ISREG(info.st_mode):
                    relative = os.path.relpath(full, base).replace(os.sep, "/")
                    yield relative, info.st_size, info.st_mtime

    def destroy(self) -> None:
        """Delete all contents of the stage (used when a managed stage is dropped)."""
        if self.kind("") == "dir":
            self.remove_dir("")

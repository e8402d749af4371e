"""Atomic writes of local files: temporary file in the target folder, fsync, ``os.replace``.

Used by the local stage backend (every write into a local stage), by the fsspec backend (the
local spool file of an upload) and by ``Stage.get`` (downloads). Temporary files are named
:data:`~shoal.stages.backend.TEMP_PREFIX` + a random hex id, so stage listings skip them and a
process killed mid-write never leaves a half-written file under the final name.

Runs wherever local files are written: the driver and every worker.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import uuid
from typing import BinaryIO

from shoal.stages.backend import TEMP_PREFIX

COPY_BUFFER = 1024 * 1024


class TempFile(io.BufferedWriter):
    """A buffered binary file for :class:`~shoal.stages.backend.AtomicWriter`.

    ``AtomicWriter`` closes its raw file and then flushes it again while closing itself, so
    ``flush()`` must be a no-op on a closed file (a plain ``open(..., "wb")`` raises there).
    """

    def flush(self) -> None:
        if not self.closed:
            super().flush()


def temp_path(folder: str) -> str:
    """A fresh temporary file name inside ``folder``."""
    return os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}")


def open_temp(path: str) -> TempFile:
    """Create ``path`` (it must not exist) and open it for buffered binary writing."""
    return TempFile(io.FileIO(path, "xb"))


def fsync_path(path: str, *, directory: bool = False) -> None:
    """Flush a file's (or a folder's entries') data to disk; silently skipped where unsupported."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems cannot fsync a folder
        pass
    finally:
        os.close(fd)


def commit_temp(tmp: str, final: str) -> None:
    """Make the closed temporary file ``tmp`` durable and rename it over ``final``."""
    fsync_path(tmp)
    os.replace(tmp, final)
    fsync_path(os.path.dirname(final) or ".", directory=True)


def replace_quickly(final: str, data: bytes) -> None:
    """Write ``data`` to ``final`` atomically but without fsync: for files that are rewritten often
    and whose loss in a machine crash costs nothing (a heartbeat)."""
    folder = os.path.dirname(final) or "."
    tmp = temp_path(folder)
    try:
        with open(tmp, "xb") as handle:
            handle.write(data)
        os.replace(tmp, final)
    except BaseException:
        discard_temp(tmp)
        raise


def discard_temp(tmp: str) -> None:
    """Delete a temporary file if it is still there."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def write_local_atomically(reader: BinaryIO, target: str) -> None:
    """Copy ``reader`` into the local file ``target`` atomically, creating its folder."""
    folder = os.path.dirname(target) or "."
    os.makedirs(folder, exist_ok=True)
    tmp = temp_path(folder)
    try:
        with open_temp(tmp) as writer:
            shutil.copyfileobj(reader, writer, COPY_BUFFER)
        commit_temp(tmp, target)
    except BaseException:
        discard_temp(tmp)
        raise

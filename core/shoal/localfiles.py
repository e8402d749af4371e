"""Atomic writes of local files, the one way shoal writes a file that others read.

A file is written to a temporary file in its own folder, then renamed over its final name with
``os.replace``: a reader sees the old file or the new one, never part of one, and a process
killed mid-write leaves no half-written file under the final name. Temporary files are named
:data:`TEMP_PREFIX` + a random hex id, so stage listings skip them. A module of its own, outside
``shoal.stages``, so that job and pool records, which every command line reads, import nothing
else.

**The fsync rule.** A file that something trusts after the machine crashes is *durable*: the
temporary file is fsynced before the rename and its folder after it, so that after a crash the
name holds the old file or the whole new one (:func:`write_atomically`, :func:`atomic_path` and
:func:`commit_temp` by default: stage files, the stage catalog, job and pool records, models,
server addresses). A file rewritten often, whose loss in a crash costs nothing because it is
rebuilt, only reports liveness or is copied on, skips both fsyncs (``durable=False``: heartbeats,
progress records that do not say DONE, a local pool's process table, a model serde's file, which
is uploaded to the stage, durably, from there).

Users: :func:`write_atomically` for whole contents; :func:`atomic_path` for a writer that wants
a file name (``torch.save``); :func:`temp_path` / :func:`open_temp` / :func:`commit_temp` for
streams (the local stage backend, the fsspec backend's spool file, ``Stage.get``).

Runs wherever local files are written: the driver and every worker.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import uuid
from collections.abc import Iterator
from typing import BinaryIO

COPY_BUFFER = 1024 * 1024
#: Files whose name starts with this prefix are in-flight atomic writes; listings skip them.
TEMP_PREFIX = ".shoal-tmp-"


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


def write_atomically(path: str | os.PathLike[str], data: bytes | str, *, durable: bool = True) -> None:
    """Replace the file ``path`` with ``data`` (text is written as UTF-8) atomically; its folder
    must exist. ``durable``: see the fsync rule in the module's docstring."""
    with atomic_path(path, durable=durable) as tmp, open(tmp, "xb") as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, durable: bool = True) -> Iterator[str]:
    """A fresh temporary file name next to ``path``, for a writer that wants a name; when the
    block ends without an error, the file written there is renamed over ``path`` (``durable``:
    see the fsync rule), else deleted."""
    final = os.fspath(path)
    tmp = temp_path(os.path.dirname(final) or ".")
    try:
        yield tmp
        if durable:
            commit_temp(tmp, final)
        else:
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
    os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
    with atomic_path(target) as tmp, open_temp(tmp) as writer:
        shutil.copyfileobj(reader, writer, COPY_BUFFER)

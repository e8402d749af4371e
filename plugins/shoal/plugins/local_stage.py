"""Built-in plugin: stages in a local folder (URL scheme ``file``).

Managed stages (``$SHOAL_HOME/stages/<NAME>``) and external ``file:///abs/path`` stages use this
backend. Writes are atomic: a temporary file ``.shoal-tmp-<uuid>`` in the target folder is
written, fsync'ed and renamed over the final name with ``os.replace``, then the folder is
fsync'ed. Symbolic links may point anywhere inside the stage folder; a path that resolves
outside it is refused (:meth:`LocalStageBackend.check_confined`) and listings skip such links.

Runs on the driver and on workers that share the folder (same machine or a shared file system).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from typing import BinaryIO

from shoal.contributions import StageBackendSpec
from shoal.errors import StagePathError
from shoal.hookspecs import hookimpl
from shoal.localfiles import commit_temp, discard_temp, open_temp, temp_path
from shoal.stages.backend import TEMP_PREFIX, AtomicWriter, PathKind, StageBackend
from shoal.stages.paths import file_url_to_path, is_within

log = logging.getLogger(__name__)


class LocalStageBackend(StageBackend):
    """Files of a stage in a local folder (the folder is created on the first write)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.root = file_url_to_path(url)

    def _full(self, path: str) -> str:
        return os.path.join(self.root, *path.split("/")) if path else self.root

    def _real_root(self) -> str:
        return os.path.realpath(self.root)

    def check_confined(self, path: str) -> None:
        """Refuse ``path`` when it resolves (through symbolic links) outside the stage folder."""
        real = os.path.realpath(self._full(path))
        root = self._real_root()
        if not is_within(real, root):
            raise StagePathError(
                f"Stage path {path!r} resolves to {real}, outside the stage folder {root}, through a "
                f"symbolic link. Links inside a stage may only point inside it; copy the data in instead."
            )

    def local_path(self, path: str) -> str | None:
        return os.path.realpath(self._full(path))

    def kind(self, path: str) -> PathKind | None:
        full = self._full(path)
        if os.path.isfile(full):
            return "file"
        if os.path.isdir(full):
            return "dir"
        return None

    def iter_files(self, prefix: str) -> Iterator[str]:
        root = self._real_root()
        start = self._full(prefix)
        if not os.path.isdir(start):
            return
        yield from self._walk(start, prefix, root, {os.path.realpath(start)})

    def _walk(self, folder: str, relative: str, root: str, ancestors: set[str]) -> Iterator[str]:
        try:
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except FileNotFoundError:  # removed while listing
            return
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            child = f"{relative}/{entry.name}" if relative else entry.name
            real = os.path.realpath(entry.path) if entry.is_symlink() else None
            if real is not None and not is_within(real, root):
                log.debug("skipping %s: symbolic link to %s, outside the stage folder %s", child, real, root)
                continue
            if entry.is_dir():
                real_dir = real or os.path.realpath(entry.path)
                if real_dir in ancestors:  # a link back to a parent folder: do not loop
                    continue
                yield from self._walk(entry.path, child, root, ancestors | {real_dir})
            elif entry.is_file():
                yield child

    def open_read(self, path: str) -> BinaryIO:
        return open(self._full(path), "rb")

    def open_write(self, path: str) -> AtomicWriter:
        final = self._full(path)
        folder = os.path.dirname(final)
        os.makedirs(folder, exist_ok=True)
        tmp = temp_path(folder)
        return AtomicWriter(
            open_temp(tmp), commit=lambda: commit_temp(tmp, final), abort=lambda: discard_temp(tmp)
        )

    def remove_file(self, path: str) -> None:
        os.unlink(self._full(path))

    def remove_dir(self, path: str) -> None:
        full = self._full(path)
        if os.path.islink(full):  # a link to a folder inside the stage: remove the link, not its target
            os.unlink(full)
        else:
            shutil.rmtree(full)


@hookimpl
def shoal_stage_backends() -> Iterator[StageBackendSpec]:
    yield StageBackendSpec(
        name="local",
        schemes=("file",),
        factory=LocalStageBackend,
        description="Local folder (managed stages in $SHOAL_HOME/stages, and file:// URLs); atomic renames.",
    )

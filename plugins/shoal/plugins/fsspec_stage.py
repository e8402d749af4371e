"""Built-in plugin: stages on object stores and remote file systems through fsspec.

Schemes: ``memory`` (in-process, for tests), ``s3``/``s3a`` (s3fs), ``gs``/``gcs`` (gcsfs),
``az``/``abfs``/``abfss`` (adlfs), ``hdfs`` (pyarrow) and ``sftp`` (paramiko). The package a
scheme needs is imported only when a stage with that scheme is used; a missing one is a
:class:`~shoal.errors.ConfigError` naming what to ``pip install``. Credentials and options come
from fsspec's usual configuration (``~/.config/fsspec/*.json``, ``FSSPEC_<PROTOCOL>_<OPTION>``
environment variables) and each library's own (``AWS_*``, ...).

Atomic writes: the bytes are first written to a local temporary file; on commit they are
uploaded in one go. On object stores an object appears only when its upload completes; on file
systems (``hdfs``, ``sftp``) the upload goes to a temporary name next to the target and is then
moved over it with ``fs.mv``. Aborting (or a killed process) never touches the remote side.

Runs on the driver and on every worker that reads or writes such a stage.
"""

from __future__ import annotations

import contextlib
import datetime
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any, BinaryIO

from shoal.contributions import StageBackendSpec
from shoal.errors import ConfigError
from shoal.extras import EXTRA_OF_MODULE, install_hint
from shoal.hookspecs import hookimpl
from shoal.localfiles import discard_temp, open_temp, temp_path
from shoal.stages.backend import TEMP_PREFIX, AtomicWriter, PathKind, StageBackend
from shoal.stages.paths import is_temp_path, url_scheme

#: Scheme -> (fsspec protocol, package to install).
SCHEMES: dict[str, tuple[str, str]] = {
    "memory": ("memory", "fsspec"),
    "s3": ("s3", "s3fs"),
    "s3a": ("s3a", "s3fs"),
    "gs": ("gs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "az": ("az", "adlfs"),
    "abfs": ("abfs", "adlfs"),
    "abfss": ("abfs", "adlfs"),
    "hdfs": ("hdfs", "pyarrow"),
    "sftp": ("sftp", "paramiko"),
}
#: Schemes where a file appears only when fully uploaded; the others need a temporary name and a move.
OBJECT_STORES = frozenset({"memory", "s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_GLOB_CHARS = frozenset("*?[")


def _install_command(package: str) -> str:
    """``pip install 'shoal[s3]'`` for a package one of shoal's extras installs, else ``pip install
    <package>``."""
    return install_hint(package) if package in EXTRA_OF_MODULE else f"pip install {package}"


class FsspecStageBackend(StageBackend):
    """Files of a stage under a URL prefix of an fsspec file system (the file system is built lazily)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.scheme = url_scheme(url)
        if self.scheme not in SCHEMES:
            raise ConfigError(f"The fsspec stage backend does not serve {self.scheme}:// URLs ({url}).")
        self.protocol, package = SCHEMES[self.scheme]
        import fsspec

        try:
            self._cls: Any = fsspec.get_filesystem_class(self.protocol)
        except ImportError as exc:
            raise ConfigError(
                f"Stage URL {url} needs the package {package!r}, which is not installed: "
                f"{_install_command(package)} ({exc})"
            ) from exc
        fs_url = url if self.scheme == self.protocol else self.protocol + url[len(self.scheme) :]
        self._fs_url = fs_url
        self.root: str = self._cls._strip_protocol(fs_url).rstrip("/")
        self._fs: Any = None
        self.atomic_by_upload = self.scheme in OBJECT_STORES

    @property
    def fs(self) -> Any:
        """The fsspec file system (built on first use, with options from the URL and fsspec config)."""
        if self._fs is None:
            self._fs = self._cls(**self._cls._get_kwargs_from_urls(self._fs_url))
        return self._fs

    def _full(self, path: str) -> str:
        if not path:
            return self.root
        return f"{self.root}/{path}" if self.root else path

    def _relative(self, full: str) -> str:
        full = self._cls._strip_protocol(full).rstrip("/")
        prefix = self.root + "/" if self.root else ""
        if not full.startswith(prefix):
            raise ValueError(f"{full!r} is not under the stage root {self.root!r}")
        return full[len(prefix) :]

    def kind(self, path: str) -> PathKind | None:
        try:
            info = self.fs.info(self._full(path))
        except FileNotFoundError:
            return None
        return "dir" if info.get("type") == "directory" else "file"

    def iter_files(self, prefix: str) -> Iterator[str]:
        try:
            found = self.fs.find(self._full(prefix), withdirs=False)
        except FileNotFoundError:
            return
        for full in sorted(found):
            relative = self._relative(full)
            if relative and not is_temp_path(relative):
                yield relative

    def open_read(self, path: str) -> BinaryIO:
        full = self._full(path)
        if self.fs.isdir(full):
            raise IsADirectoryError(full)
        handle: BinaryIO = self.fs.open(full, "rb")
        return handle

    def read_whole(self, path: str) -> bytes:
        """One request for the whole object: a file that is replaced while it is read (a run's
        state, a log written again whole) comes back as one version, never as a failed read
        (s3fs reads an open file in ranges, each bound to the version it opened)."""
        full = self._full(path)
        try:
            data: bytes = self.fs.cat_file(full)
        except FileNotFoundError:
            if self.fs.isdir(full):
                raise IsADirectoryError(full) from None
            raise
        return data

    def open_write(self, path: str) -> AtomicWriter:
        final = self._full(path)
        local_tmp = temp_path(tempfile.gettempdir())

        def commit() -> None:
            try:
                if self.atomic_by_upload:
                    self.fs.put_file(local_tmp, final)
                else:
                    self._upload_then_move(local_tmp, final)
            finally:
                discard_temp(local_tmp)

        return AtomicWriter(open_temp(local_tmp), commit=commit, abort=lambda: discard_temp(local_tmp))

    def _upload_then_move(self, local_tmp: str, final: str) -> None:
        parent = final.rsplit("/", 1)[0] if "/" in final else ""
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        name = f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        remote_tmp = f"{parent}/{name}" if parent else name
        self.fs.put_file(local_tmp, remote_tmp)
        try:
            if self.fs.exists(final):  # not every file system replaces on move
                self.fs.rm_file(final)
            self.fs.mv(remote_tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(remote_tmp)
            raise

    def temp_files(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """Temporary names of uploads that were not moved into place (file systems without atomic
        uploads); a file whose store gives no modification time is not shown."""
        try:
            found = self.fs.find(self._full(prefix), withdirs=False, detail=True)
        except FileNotFoundError:
            return
        for full, info in sorted(found.items()):
            if not full.rsplit("/", 1)[-1].startswith(TEMP_PREFIX):
                continue
            mtime = _modified(info)
            if mtime is not None:
                yield self._relative(full), int(info.get("size") or 0), mtime

    def remove_file(self, path: str) -> None:
        self.fs.rm_file(self._full(path))

    def remove_dir(self, path: str) -> None:
        full = self._full(path)
        if not _GLOB_CHARS.intersection(full):
            self.fs.rm(full, recursive=True)  # one batched call where the store supports it
            return
        # fs.rm() expands glob characters; remove the files one by one, literally.
        for file_path in self.fs.find(full, withdirs=False):
            self.fs.rm_file(file_path)
        for dir_path in sorted(self.fs.find(full, withdirs=True), key=len, reverse=True):
            with contextlib.suppress(OSError):
                self.fs.rmdir(dir_path)
        with contextlib.suppress(OSError):
            self.fs.rmdir(full)


@hookimpl
def shoal_stage_backends() -> Iterator[StageBackendSpec]:
    yield StageBackendSpec(
        name="fsspec",
        schemes=tuple(SCHEMES),
        factory=FsspecStageBackend,
        description="Object stores and remote file systems through fsspec (memory, S3, GCS, Azure, HDFS...).",
    )


def _modified(info: dict[str, Any]) -> float | None:
    """A file's modification time from an fsspec ``info`` dict (each store names it its own way)."""
    for key in ("mtime", "LastModified", "updated", "last_modified", "created"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime.datetime):
            return value.timestamp()
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return None

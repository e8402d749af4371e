"""The :class:`Stage` object: files of one stage, whatever storage is behind it.

A stage does everything that is the same for every backend: it validates and confines paths
(:mod:`shoal.stages.paths`), calls the backend's ``check_confined`` before every operation,
matches list patterns (:mod:`shoal.stages.patterns`) and moves local files in and out. The
backend is chosen by the URL scheme through :func:`shoal.hooks.stage_backend_for_scheme` and
built lazily, on first use, in the process that uses the stage.

A ``Stage`` pickles as its name, URL and managed flag only, so it can be sent to Ray workers;
each worker builds its own backend through its own plugin manager.

Runs on the driver and on workers.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import glob
import io
import os
import shutil
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, Literal, overload

from shoal.errors import ConfigError, PluginError, StageFileNotFoundError, StagePathError
from shoal.localfiles import COPY_BUFFER, write_local_atomically
from shoal.stages.backend import TEMP_PREFIX, AtomicWriter, StageBackend
from shoal.stages.names import format_location
from shoal.stages.paths import basename, is_temp_path, join_path, normalize_path, relative_to, url_scheme
from shoal.stages.patterns import compile_pattern

_MODES = ("rb", "r", "wb", "w")
#: What :meth:`Stage.open` returns: a binary reader, an atomic binary writer, or text over either.
StageFile = BinaryIO | AtomicWriter | io.TextIOWrapper
_GLOB_CHARS = frozenset("*?[")


def open_backend(url: str) -> StageBackend:
    """Build the backend serving ``url`` through the plugin hooks.

    Raises :class:`~shoal.errors.ConfigError` when no plugin serves the URL scheme (or an optional
    package is missing), :class:`~shoal.errors.PluginError` when the factory returns something
    that is not a :class:`StageBackend`.
    """
    from shoal import hooks  # the plugin manager, only once a stage is opened

    spec = hooks.stage_backend_for_scheme(url_scheme(url))
    backend = spec.factory(url)
    if not isinstance(backend, StageBackend):
        raise PluginError(
            f"Stage backend {spec.name!r} returned {type(backend).__name__} for {url!r}; its factory must "
            f"return a shoal.stages.StageBackend."
        )
    return backend


class _AtomicTextWriter(io.TextIOWrapper):
    """UTF-8 text over an :class:`AtomicWriter`: closing commits, an exception in ``with`` aborts."""

    def __init__(self, writer: AtomicWriter) -> None:
        self._atomic = writer
        super().__init__(io.BufferedWriter(writer), encoding="utf-8")

    def abort(self) -> None:
        """Drop what was written; the final name keeps its earlier content (or stays absent)."""
        self._atomic.abort()
        with contextlib.suppress(ValueError):  # the buffers' raw file is closed: nothing to flush
            self.close()

    def __del__(self) -> None:
        # dropped without close() (an exception outside a with block, or forgotten): the text
        # layer's own finaliser would close, and so commit, half a file. Only close() commits.
        if not self.closed:
            with contextlib.suppress(Exception):
                self.abort()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class Stage:
    """A named place where files live: ``stage.put(...)``, ``stage.list()``, ``stage.open(...)``.

    Get one with :func:`shoal.stages.get_stage` or :func:`shoal.stages.create_stage`. Every
    ``path`` argument is relative to the stage root (``""`` is the root) and uses ``/``; it may
    not contain ``..``, start with ``/`` or ``~``, or hold backslashes. Equality is by
    ``(name, url)``.
    """

    def __init__(self, name: str, url: str, *, managed: bool = False) -> None:
        self.name = name
        self.url = url
        self.managed = managed
        self._backend: StageBackend | None = None

    # -- identity -------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"Stage(name={self.name!r}, url={self.url!r}, managed={self.managed})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Stage):
            return NotImplemented
        return (self.name, self.url) == (other.name, other.url)

    def __hash__(self) -> int:
        return hash((self.name, self.url))

    def __getstate__(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "managed": self.managed}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.name, self.url, self.managed = state["name"], state["url"], state["managed"]
        self._backend = None

    def location(self, path: str = "") -> str:
        """The location string of ``path`` in this stage, e.g. ``"@MODELS/v1/model.json"``."""
        return format_location(self.name, normalize_path(path))

    @property
    def backend(self) -> StageBackend:
        """The storage backend (built on first use in this process)."""
        if self._backend is None:
            self._backend = open_backend(self.url)
        return self._backend

    def _path(self, path: str) -> str:
        """Normalize ``path`` and check that the backend keeps it inside the stage."""
        normalized = normalize_path(path)
        self.backend.check_confined(normalized)
        return normalized

    def _missing(self, path: str) -> StageFileNotFoundError:
        return StageFileNotFoundError(f"No file or folder at {self.location(path)} (stage URL {self.url}).")

    # -- queries --------------------------------------------------------------------------

    def exists(self, path: str) -> bool:
        """True when a file or folder is at ``path`` (the root ``""`` always exists)."""
        normalized = self._path(path)
        return normalized == "" or self.backend.kind(normalized) is not None

    def list(self, path: str = "", pattern: str = "*") -> list[str]:
        """Files under the folder ``path`` (recursively) matching ``pattern``, sorted.

        Paths are relative to the stage root, with ``/``. A pattern without ``/`` matches the base
        name (``"*.parquet"`` finds nested files); a pattern with ``/`` matches the path relative to
        ``path``, where ``**`` spans any number of folders and ``*`` stays within one. If ``path`` is
        a file, the result is that file when its name matches. A missing ``path`` gives ``[]``.
        """
        folder = self._path(path)
        matches = compile_pattern(pattern)
        kind = self.backend.kind(folder)
        if kind is None:
            return []
        if kind == "file":
            return [folder] if matches(basename(folder)) else []
        found: list[str] = []
        for file_path in self.backend.iter_files(folder):
            if is_temp_path(file_path):
                continue
            if matches(relative_to(file_path, folder)):
                found.append(file_path)
        return sorted(found)

    # -- reading and writing --------------------------------------------------------------

    @overload
    def open(self, path: str, mode: Literal["rb"] = "rb") -> BinaryIO: ...
    @overload
    def open(self, path: str, mode: Literal["wb"]) -> AtomicWriter: ...
    @overload
    def open(self, path: str, mode: Literal["r", "w"]) -> io.TextIOWrapper: ...
    @overload
    def open(self, path: str, mode: str) -> Any: ...

    def open(self, path: str, mode: str = "rb") -> StageFile:
        """Open the file at ``path``: ``"rb"``, ``"r"`` (UTF-8 text), ``"wb"`` or ``"w"``.

        Writes are atomic: the file appears under its name, whole, only when the file is closed
        without error. An exception inside ``with stage.open(p, "w") as f:`` aborts the write and
        keeps the previous content (or no file). Call ``f.abort()`` to drop a write explicitly.
        """
        if mode not in _MODES:
            raise ConfigError(
                f"Unsupported mode {mode!r} for Stage.open(); choose one of {', '.join(_MODES)}."
            )
        normalized = self._path(path)
        if not normalized:
            raise StagePathError(f"Cannot open the root of stage {self.name}; name a file inside it.")
        if mode in ("rb", "r"):
            with self._reading(normalized):
                raw = self.backend.open_read(normalized)
            return raw if mode == "rb" else io.TextIOWrapper(raw, encoding="utf-8")
        if self.backend.kind(normalized) == "dir":
            raise StagePathError(f"{self.location(normalized)} is a folder; cannot write a file there.")
        writer = self._open_write(normalized)
        return writer if mode == "wb" else _AtomicTextWriter(writer)

    def _open_write(self, path: str) -> AtomicWriter:
        try:
            return self.backend.open_write(path)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StagePathError(
                f"Cannot write {self.location(path)}: a folder on its path is a file ({exc})."
            ) from exc

    @contextlib.contextmanager
    def _reading(self, path: str) -> Iterator[None]:
        """Turn a backend's missing file or folder in place of a file into the stage's errors."""
        try:
            yield
        except FileNotFoundError as exc:
            raise self._missing(path) from exc
        except IsADirectoryError as exc:
            raise StagePathError(f"{self.location(path)} is a folder, not a file.") from exc

    def read_bytes(self, path: str) -> bytes:
        """The content of the file at ``path``, as one version of it when it is being replaced."""
        normalized = self._path(path)
        if not normalized:
            raise StagePathError(f"Cannot read the root of stage {self.name}; name a file inside it.")
        with self._reading(normalized):
            return self.backend.read_whole(normalized)

    def read_text(self, path: str) -> str:
        """The content of the file at ``path``, decoded as UTF-8."""
        return self.read_bytes(path).decode("utf-8")

    def write_bytes(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``path`` atomically (replacing any earlier file)."""
        with self.open(path, "wb") as handle:
            handle.write(data)

    def write_text(self, path: str, text: str) -> None:
        """Write ``text`` (UTF-8) to ``path`` atomically (replacing any earlier file)."""
        with self.open(path, "w") as handle:
            handle.write(text)

    def append_bytes(self, path: str, data: bytes) -> None:
        """Add ``data`` at the end of the file at ``path`` (created if missing); for logs.

        On a stage that is a local folder this is one appending write, so a reader sees the file
        grow; elsewhere the file is read and written again whole (atomically), which costs the
        size of the file: callers that append often keep a local copy and use
        :meth:`write_bytes` instead (see :meth:`appends_in_place`)."""
        normalized = self._path(path)
        local = self.backend.local_path(normalized)
        if local is None:
            earlier = self.read_bytes(normalized) if self.exists(normalized) else b""
            self.write_bytes(normalized, earlier + data)
            return
        if os.path.isdir(local):
            raise StagePathError(f"{self.location(normalized)} is a folder; cannot write a file there.")
        os.makedirs(os.path.dirname(local), exist_ok=True)
        with open(local, "ab") as handle:
            handle.write(data)

    def appends_in_place(self) -> bool:
        """Whether :meth:`append_bytes` is a cheap appending write (a stage on a local folder)."""
        return self.backend.local_path("") is not None

    def read_bytes_from(self, path: str, offset: int) -> bytes:
        """The content of the file at ``path`` from byte ``offset`` on (``b""`` past its end):
        how a follower reads only what a growing log added since its last read."""
        if self.backend.local_path("") is None:  # an object store: a log is replaced whole
            return self.read_bytes(path)[offset:]
        with self.open(path, "rb") as handle:
            try:
                handle.seek(offset)
                return handle.read()
            except (OSError, ValueError):  # not seekable: read it all and cut
                return handle.read()[offset:]

    # -- local files in and out -----------------------------------------------------------

    def put(self, local_path: str | os.PathLike[str], dest_dir: str = "") -> builtins.list[str]:
        """Upload local files into the folder ``dest_dir`` of the stage; return the stage paths written.

        * a file goes to ``dest_dir/<file name>``;
        * a folder's *contents* go under ``dest_dir``, keeping their layout (like ``cp -r dir/. dest``);
        * a glob pattern (``data/*.csv``, ``data/**/*.csv``) uploads each match as above, except that
          a matched folder keeps its own name (``dest_dir/<folder name>/...``, like ``cp -r data/* dest``).

        Each file is written atomically. Raises :class:`FileNotFoundError` when nothing is there.
        """
        local = os.path.expanduser(os.fspath(local_path))
        dest = self._path(dest_dir)
        plan = list(self._plan_put(local, dest))
        targets: dict[str, str] = {}
        for source, target in plan:
            if target in targets:
                raise ConfigError(
                    f"put({local!r}): {targets[target]!r} and {source!r} would both be written to "
                    f"{self.location(target)}; upload them into different folders."
                )
            targets[target] = source
        for target, source in targets.items():
            self.backend.check_confined(target)
            with open(source, "rb") as reader, self._open_write(target) as writer:
                shutil.copyfileobj(reader, writer, COPY_BUFFER)
        return sorted(targets)

    def _plan_put(self, local: str, dest: str) -> Iterable[tuple[str, str]]:
        """``(local file, stage path)`` pairs that :meth:`put` uploads."""
        if os.path.isfile(local):
            yield local, join_path(dest, normalize_path(os.path.basename(local)))
        elif os.path.isdir(local):
            yield from _walk_local(local, dest)
        elif _GLOB_CHARS & set(local):
            matches = sorted(glob.glob(local, recursive=True))
            if not matches:
                raise FileNotFoundError(errno.ENOENT, f"No local file matches the pattern {local!r}", local)
            for match in matches:
                if os.path.basename(match).startswith(TEMP_PREFIX):
                    continue
                if os.path.isdir(match):
                    yield from _walk_local(match, join_path(dest, normalize_path(os.path.basename(match))))
                elif os.path.isfile(match):
                    yield match, join_path(dest, normalize_path(os.path.basename(match)))
        else:
            raise FileNotFoundError(
                errno.ENOENT, f"No local file or folder {local!r} to put into stage {self.name}", local
            )

    def get(self, path: str, local_dir: str | os.PathLike[str]) -> builtins.list[str]:
        """Download ``path`` into the local folder ``local_dir``; return the local paths written, sorted.

        A file keeps its base name (``local_dir/<name>``); a folder brings everything under it,
        keeping the layout relative to that folder. Each local file is written atomically
        (temporary file, then ``os.replace``). Raises
        :class:`~shoal.errors.StageFileNotFoundError` when nothing is at ``path``.
        """
        source = self._path(path)
        kind = self.backend.kind(source) if source else "dir"
        if kind is None:
            raise self._missing(source)
        if kind == "file":
            pairs = [(source, basename(source))]
        else:
            pairs = [
                (file_path, relative_to(file_path, source))
                for file_path in self.backend.iter_files(source)
                if not is_temp_path(file_path)
            ]
        local_root = os.path.abspath(os.path.expanduser(os.fspath(local_dir)))
        written: builtins.list[str] = []
        for stage_path, relative in pairs:
            self.backend.check_confined(stage_path)
            target = os.path.join(local_root, *relative.split("/"))
            with self.backend.open_read(stage_path) as reader:
                write_local_atomically(reader, target)
            written.append(target)
        return sorted(written)

    # -- removing -------------------------------------------------------------------------

    def remove(self, path: str, *, missing_ok: bool = False) -> int:
        """Delete the file, or the folder recursively, at ``path``; return how many files were removed.

        The stage root cannot be removed this way (use ``drop_stage``, or remove its folders).
        Raises :class:`~shoal.errors.StageFileNotFoundError` when nothing is there, unless
        ``missing_ok``.
        """
        normalized = self._path(path)
        if not normalized:
            raise StagePathError(
                f"Refusing to remove the root of stage {self.name}. To delete the stage use "
                f"shoal.drop_stage({self.name!r}); to empty it, remove its files or folders by path."
            )
        kind = self.backend.kind(normalized)
        if kind is None:
            if missing_ok:
                return 0
            raise self._missing(normalized)
        if kind == "file":
            self.backend.remove_file(normalized)
            return 1
        count = sum(1 for _ in self.backend.iter_files(normalized))
        self.backend.remove_dir(normalized)
        return count


def _walk_local(folder: str, dest: str) -> Iterable[tuple[str, str]]:
    """Every file under the local ``folder`` with its stage path under ``dest``.

    Leftover temporary files of interrupted writes (``TEMP_PREFIX*``) are skipped.
    """
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(name for name in dirnames if not name.startswith(TEMP_PREFIX))
        relative_dir = os.path.relpath(dirpath, folder)
        for filename in sorted(filenames):
            if filename.startswith(TEMP_PREFIX):
                continue
            parts = [] if relative_dir == "." else relative_dir.split(os.sep)
            relative = normalize_path("/".join([*parts, filename]))
            yield os.path.join(dirpath, filename), join_path(dest, relative)

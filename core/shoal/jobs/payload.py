"""What a job runs, and how it gets onto the stage under ``@stage/<job name>/app/``.

Three kinds of payload: a Python function (``remote``), a file (``submit_file``), a folder with
an entrypoint (``submit_directory``). ``imports`` add local modules or folders to ``app/`` so
the payload can import them. Function arguments are pickled; a Snowpark ``Session`` among them
is replaced by a marker and re-created inside the job.

Runs on the driver, at submit time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import os
import sys
import sysconfig
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from shoal.errors import ConfigError
from shoal.stages import Stage

SKIP_DIRS = {"__pycache__", ".git", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
SESSION_MARKER = "session@"


@dataclass
class Payload:
    """A job's code: ``kind`` is ``function``, ``file`` or ``command``."""

    kind: str
    base_name: str
    entrypoint: str | list[str] = ""
    args: list[str] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)  # app-relative path -> local file
    blobs: dict[str, bytes] = field(default_factory=dict)  # app-relative path -> content

    def top_level_modules(self) -> set[str]:
        """The modules and packages the job's folder provides (it is first on the job's path)."""
        names = set()
        for rel in [*self.blobs, *self.files]:
            top = rel.split("/", 1)[0]
            name = top[: -len(".py")] if top.endswith(".py") and "/" not in rel else top
            if name.isidentifier():
                names.add(name)
        return names

    def upload(self, stage: Stage, job_dir: str) -> None:
        for rel, data in sorted(self.blobs.items()):
            stage.write_bytes(f"{job_dir}/app/{rel}", data)
        for rel, local in sorted(self.files.items()):
            try:
                data = local.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read {local} of the job's payload ({exc.strerror or exc}); fix or remove it "
                    f"and submit again"
                ) from exc
            stage.write_bytes(f"{job_dir}/app/{rel}", data)


def _walk(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in names:
            path = Path(root) / name
            if path.suffix in SKIP_SUFFIXES:
                continue
            found[path.relative_to(folder).as_posix()] = path
    return found


def _session_marker(value: Any) -> Any:
    module = type(value).__module__
    if module.startswith("snowflake.snowpark") and type(value).__name__ == "Session":
        from shoal.data.job_session import describe

        # embedded: the same service's database and schema, live, in the job
        return f"{SESSION_MARKER}{describe(value).to_env()}"
    if isinstance(value, list):
        return [_session_marker(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_session_marker(v) for v in value)
    if isinstance(value, dict):
        return {k: _session_marker(v) for k, v in value.items()}
    return value


def _installed(module: ModuleType) -> bool:
    """Whether ``module`` comes from the Python installation (so the job can import it too)."""
    file = getattr(module, "__file__", None)
    if file is None:
        return True
    roots = {sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    return any(os.path.abspath(file).startswith(os.path.abspath(root) + os.sep) for root in roots if root)


@contextlib.contextmanager
def _by_value(func: Callable[..., Any]) -> Iterator[None]:
    """Pickle the user's own modules (scripts, notebooks' helpers, tests) by value, not by name:
    the job's process does not have them on its path."""
    module = sys.modules.get(getattr(func, "__module__", "") or "")
    register = (
        module is not None
        and module.__name__ not in ("__main__", "builtins")
        and not module.__name__.startswith("shoal.")
        and not _installed(module)
    )
    if register:
        assert module is not None
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        if register:
            assert module is not None
            cloudpickle.unregister_pickle_by_value(module)


def function_payload(func: Callable[..., Any], args: Sequence[Any], kwargs: dict[str, Any]) -> Payload:
    """Pickle ``func`` and its arguments (sessions become markers)."""
    signature = inspect.signature(func)
    for parameter in signature.parameters.values():
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            raise NotImplementedError(
                f"{func.__name__}() takes *args/**kwargs, which remote jobs do not support; "
                f"name every parameter."
            )
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{func.__name__}(): {exc}") from None
    try:
        with _by_value(func):
            func_blob = cloudpickle.dumps(func)
            args_blob = cloudpickle.dumps((_session_marker(list(args)), _session_marker(dict(kwargs))))
    except Exception as exc:
        raise ConfigError(
            f"Cannot pickle {func.__name__}() or its arguments ({type(exc).__name__}: {exc}). A job function "
            f"must not capture unpicklable state such as a Snowpark DataFrame, a lock or an open connection; "
            f"pass what it needs as arguments or create it inside the function."
        ) from exc
    source = ""
    with contextlib.suppress(OSError, TypeError):
        source = inspect.getsource(func)
    return Payload(
        kind="function",
        base_name=func.__name__,
        blobs={"func.pkl": func_blob, "function_args.pkl": args_blob, "func_source.py": source.encode()},
    )


def file_payload(path: str | os.PathLike[str], args: Sequence[str] | None) -> Payload:
    local = Path(path)
    if not local.is_file():
        raise FileNotFoundError(f"Payload file {str(local)!r} does not exist")
    return Payload(
        kind="file",
        base_name=local.stem,
        entrypoint=local.name,
        args=[str(a) for a in args or []],
        files={local.name: local},
    )


def directory_payload(
    path: str | os.PathLike[str], entrypoint: str | list[str], args: Sequence[str] | None
) -> Payload:
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Payload folder {str(folder)!r} does not exist")
    files = _walk(folder)
    if isinstance(entrypoint, list):
        if not entrypoint:
            raise ConfigError("entrypoint as a command must not be empty")
        return Payload(
            kind="command",
            base_name=Path(entrypoint[0]).stem,
            entrypoint=list(entrypoint),
            args=[str(a) for a in args or []],
            files=files,
        )
    entry = _entry_in(folder, entrypoint)
    if entry not in files:
        raise FileNotFoundError(
            f"Entrypoint {entrypoint!r} is not in {str(folder)!r}; give a path relative to that folder "
            f"(files there: {', '.join(sorted(files)[:10])})"
        )
    return Payload(
        kind="file",
        base_name=Path(entry).stem,
        entrypoint=entry,
        args=[str(a) for a in args or []],
        files=files,
    )


def _entry_in(folder: Path, entrypoint: str) -> str:
    """The entrypoint as a path relative to ``folder``, as the reference resolves it: relative to
    the folder, or an absolute path (or one relative to the current folder) that lies inside it."""
    given = Path(entrypoint)
    for candidate in [given] if given.is_absolute() else [Path.cwd() / given]:
        try:
            return candidate.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            pass
    return given.as_posix()


def _add_zip(payload: Payload, archive: Path, import_path: str | None) -> None:
    """An import that is a ``.zip``: its files go into ``app/``, so what it holds imports as it
    would from the archive on ``sys.path``. With ``import_path``, an archive that holds the
    package's files (``core.py`` at its root) is laid out under that package; one that already
    holds the package's folder (``my_lib/core.py`` for ``my_lib``) is kept as it is."""
    import zipfile

    prefix = Path(*import_path.split(".")) if import_path else Path()
    with zipfile.ZipFile(archive) as handle:
        files = [info for info in handle.infolist() if not info.is_dir()]
        if (
            import_path
            and files
            and all(Path(info.filename).parts[: len(prefix.parts)] == prefix.parts for info in files)
        ):
            prefix = Path()  # the archive holds the package's folder already
        for info in files:
            name = Path(info.filename)
            if name.is_absolute() or ".." in name.parts:
                raise ConfigError(
                    f"imports: {archive} holds {info.filename!r}, which points outside the archive"
                )
            if "__pycache__" in name.parts or name.suffix in SKIP_SUFFIXES:
                continue
            payload.blobs[(prefix / name).as_posix()] = handle.read(info)


def add_imports(payload: Payload, imports: Sequence[Any] | None) -> None:
    """Copy each import (a path, a module, or ``(path_or_module, import_path)``) into ``app/``."""
    for item in imports or []:
        target, import_path = item if isinstance(item, tuple) else (item, None)
        if isinstance(target, str) and not os.path.exists(target):
            spec = importlib.util.find_spec(target)
            if spec is None or not spec.origin:
                raise ConfigError(f"imports: {target!r} is neither a path nor an importable module")
            origin = Path(spec.origin)
            target_path = origin.parent if origin.name == "__init__.py" else origin
            import_path = import_path or target
        elif hasattr(target, "__file__"):
            origin = Path(target.__file__)
            target_path = origin.parent if origin.name == "__init__.py" else origin
            import_path = import_path or target.__name__
        else:
            target_path = Path(target)
            if not target_path.exists():
                raise FileNotFoundError(f"imports: {str(target_path)!r} does not exist")
            if target_path.suffix == ".zip":
                _add_zip(payload, target_path, import_path)
                continue
            import_path = import_path or target_path.stem
        dest = Path(*str(import_path).split("."))
        if target_path.is_dir():
            for rel, local in _walk(target_path).items():
                payload.files[(dest / rel).as_posix()] = local
        else:
            payload.files[dest.with_suffix(".py").as_posix()] = target_path

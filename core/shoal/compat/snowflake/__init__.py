"""Run code written for Snowflake's Container Runtime on shoal, unmodified: the reference's import
paths resolve to shoal's implementations.

Three ways to turn it on:

- ``shoal.compat.snowflake.install()`` in the script (or a notebook);
- ``python -m shoal.compat.snowflake SCRIPT.py [args]``;
- ``shoal run --snowflake-compat SCRIPT.py [args]``.

Covered: ``snowflake.ml.modeling.distributors`` (``xgboost``, ``lightgbm``, ``pytorch``,
``distributed_partition_function``, ``many_model`` and their sub-modules),
``snowflake.ml.data``, ``snowflake.ml.jobs``, ``snowflake.ml.runtime_cluster``, the legacy
``snowflake.ml.modeling.pytorch``, ``snowflake.ml.modeling.tune`` (:mod:`shoal.tune`) and, as
clear "not supported by shoal" stand-ins, ``snowflake.ml.ray``'s stage data sources. See
:mod:`shoal.compat.snowflake.modules` for every name, and docs/snowflake-compat.md.

When the real snowflake-ml-python is installed, only the modules it lacks are added, and the
ones that would reach a Snowflake account (``snowflake.ml.jobs``, ``snowflake.ml.data``) are
replaced; :func:`install` says which (:class:`CompatReport`). Jobs, DPF partitions and training
workers started from a process that installed it install it too (through the plugin manifest).

Runs on the driver, and in every shoal worker of a job started from it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
import types
from dataclasses import dataclass, field
from typing import Any

from shoal.compat import mark_installed, mark_uninstalled
from shoal.compat.snowflake.modules import MODULES, OVERRIDE, PACKAGES, is_package
from shoal.extras import require

log = logging.getLogger(__name__)

LAYER = "snowflake"
CLIENT = "snowflake-ml-python"


@dataclass
class CompatReport:
    """What :func:`install` did: the real client's version (None when it is not installed), the
    modules shoal adds, the real ones it replaces, and the real ones it leaves alone (found when
    they are first imported)."""

    client_version: str | None = None
    added: list[str] = field(default_factory=list)
    overridden: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.client_version is None:
            return f"shoal.compat.snowflake: {len(self.added)} snowflake.ml modules served by shoal"
        replaced = ", ".join(self.overridden) or "nothing"
        return (
            f"shoal.compat.snowflake: {CLIENT} {self.client_version} is installed; shoal replaces {replaced} "
            f"and adds what it lacks ({len(self.added)} modules); the rest is the real client's"
        )


class _LazyModule(types.ModuleType):
    """A reference module whose names load from shoal on first use."""

    _shoal_names: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        names = self.__dict__.get("_shoal_names", {})
        if name not in names:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r} (shoal.compat.snowflake)"
            )
        value = names[name]
        if isinstance(value, str):
            module_name, _, attribute = value.partition(":")
            value = getattr(importlib.import_module(module_name), attribute)
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get("_shoal_names", {})))

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        """Pickled by name, as cloudpickle pickles a plain module: a function that uses a reference
        module (``tune.get_tuner_context()``) reaches a job's or a trial's process, where the
        layer is installed too and the import finds the same module."""
        return importlib.import_module, (self.__name__,)


class _Loader(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _LazyModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        names = dict(MODULES.get(module.__name__, {}))
        module.__dict__["_shoal_names"] = names
        module.__dict__["__all__"] = sorted(names)
        module.__dict__["__shoal_compat__"] = True


class _Finder(importlib.abc.MetaPathFinder):
    """Serves the table's modules; with the real client, only those it lacks or must not keep."""

    def __init__(self, report: CompatReport) -> None:
        self.report = report
        self.loader = _Loader()

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES and fullname not in PACKAGES:
            return None
        if fullname not in OVERRIDE and self._real_spec(fullname, path) is not None:
            if fullname not in self.report.kept:
                self.report.kept.append(fullname)
            return None
        spec = importlib.machinery.ModuleSpec(fullname, self.loader, is_package=is_package(fullname))
        if spec.submodule_search_locations is not None:
            spec.submodule_search_locations = []
        return spec

    def _real_spec(self, fullname: str, path: Any) -> Any:
        """The spec another finder has for ``fullname`` (the real client's), or None."""
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            try:
                spec = finder.find_spec(fullname, path)
            except (ImportError, AttributeError, ValueError):
                continue
            if spec is not None:
                return spec
        return None


_state: dict[str, Any] = {"finder": None}


def _client_version() -> str | None:
    from importlib import metadata

    try:
        return metadata.version(CLIENT)
    except metadata.PackageNotFoundError:
        return None


def install(*, quiet: bool = False) -> CompatReport:
    """Make the reference's import paths resolve to shoal (idempotent); return what was done.
    With the real client installed, say on stderr which modules shoal replaces (unless ``quiet``)."""
    finder = _state["finder"]
    if finder is not None:
        return finder.report
    require(["snowflake.snowpark"], "the Snowflake compatibility layer")
    report = CompatReport(client_version=_client_version())
    report.overridden = sorted(OVERRIDE) if report.client_version else []
    report.added = sorted(name for name in MODULES if name not in OVERRIDE or not report.client_version)
    for name in list(sys.modules):  # a real module imported before: the next import gets shoal's
        if any(name == o or name.startswith(o + ".") for o in OVERRIDE):
            del sys.modules[name]
    finder = _Finder(report)
    sys.meta_path.insert(0, finder)
    _state["finder"] = finder
    mark_installed(LAYER)
    from shoal.compat.snowflake.sessions import patch_sessions

    patch_sessions()
    if report.client_version and not quiet:
        log.warning("%s", report.summary())
    return report


def uninstall() -> None:
    """Undo :func:`install`: the finder goes, and so do the modules it served."""
    finder = _state["finder"]
    if finder is None:
        return
    sys.meta_path.remove(finder)
    _state["finder"] = None
    from shoal.compat.snowflake.sessions import unpatch_sessions

    unpatch_sessions()
    for name, module in list(sys.modules.items()):
        if getattr(module, "__shoal_compat__", False):
            del sys.modules[name]
    mark_uninstalled(LAYER)


def is_installed() -> bool:
    return _state["finder"] is not None

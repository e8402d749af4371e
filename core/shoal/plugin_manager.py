"""Build, cache and describe the plugin manager.

The plugin manager is built by :func:`make_plugin_manager`, never at import time, and cached
per process by :func:`get_plugin_manager`. It registers, in order:

1. the built-in plugins named in :data:`BUILTIN_PLUGINS`, through the same
   :meth:`ShoalPluginManager.register_plugin` path as every other plugin;
2. plugins discovered through the entry-point group ``shoal`` (unless
   ``SHOAL_DISABLE_PLUGIN_AUTOLOAD`` is set);
3. plugins handed over explicitly.

Plugins named in ``SHOAL_BLOCKED_PLUGINS`` (comma-separated) or in ``blocked=`` are skipped.
Afterwards every hook implementation must match a spec: a misspelled hook is an error.

The manager is never pickled. A worker rebuilds its own from the driver's
:class:`PluginManifest` (names, sources, distributions and versions) with
:func:`shoal.runtime.plugin_bootstrap.install_worker_plugin_manager`, and checks that it got
the same plugins and versions.

Runs on the driver; workers use it through the runtime bootstrap.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

import pluggy

from shoal import hookspecs
from shoal.errors import PluginError
from shoal.wire import WireSpec

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "shoal"
ENV_DISABLE_AUTOLOAD = "SHOAL_DISABLE_PLUGIN_AUTOLOAD"
ENV_BLOCKED = "SHOAL_BLOCKED_PLUGINS"
ENV_TRACE = "SHOAL_TRACE_PLUGINS"
HOOK_PREFIX = "shoal_"

#: The built-in plugins, registered exactly like third-party ones. Name = last module component.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "shoal.plugins.local_stage",
    "shoal.plugins.fsspec_stage",
    "shoal.plugins.serdes",
    "shoal.plugins.local_pool",
    "shoal.plugins.ray_pool",
    "shoal.plugins.partitioners",
    "shoal.plugins.data_sources",
)

PluginSource = Literal["builtin", "entrypoint", "module", "object"]


@dataclass(frozen=True)
class PluginRecord(WireSpec):
    """Where a registered plugin came from: enough to rebuild it in another process."""

    name: str
    distribution: str
    version: str
    source: PluginSource
    target: str  # module name, entry-point value, or "module:qualname" of an object's class

    def describe(self) -> str:
        """``name (distribution version)``, for error messages."""
        version = f" {self.version}" if self.version else ""
        return f"'{self.name}' (distribution {self.distribution}{version})"


@dataclass(frozen=True)
class PluginManifest(WireSpec):
    """What a worker needs to rebuild the driver's plugin manager: small, sent as JSON
    (:mod:`shoal.wire`)."""

    plugins: tuple[PluginRecord, ...]
    blocked: tuple[str, ...] = ()
    #: compatibility layers installed in the driver (``"snowflake"``): workers install them too,
    #: so that code and pickles naming the reference's modules resolve there as well
    compat: tuple[str, ...] = ()

    def names(self) -> list[str]:
        return [p.name for p in self.plugins]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no", "off")


def blocked_from_env() -> set[str]:
    """Plugin names listed in ``SHOAL_BLOCKED_PLUGINS`` (comma- or space-separated)."""
    raw = os.environ.get(ENV_BLOCKED, "")
    return {part.strip() for part in re.split(r"[,\s]+", raw) if part.strip()}


def autoload_from_env() -> bool:
    """False when ``SHOAL_DISABLE_PLUGIN_AUTOLOAD`` is set to a true value."""
    return not _truthy(os.environ.get(ENV_DISABLE_AUTOLOAD))


def _shoal_version() -> str:
    from shoal._version import __version__

    return __version__


def _distribution_of_module(module_name: str) -> tuple[str, str]:
    top = module_name.split(".")[0]
    if top == "shoal":
        return "shoal", _shoal_version()
    dists = importlib.metadata.packages_distributions().get(top, [])
    if dists:
        try:
            return dists[0], importlib.metadata.version(dists[0])
        except importlib.metadata.PackageNotFoundError:
            return dists[0], ""
    return "(local code)", ""


class ShoalPluginManager(pluggy.PluginManager):
    """A pluggy manager that records where each plugin came from and explains its errors."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._records: dict[str, PluginRecord] = {}
        self._blocked_names: set[str] = set()
        #: contributions collected per kind (:func:`shoal.hooks.collect_with_origin`); emptied
        #: whenever a plugin is registered or unregistered
        self.contributions: dict[str, tuple[tuple[Any, str], ...]] = {}
        if _truthy(os.environ.get(ENV_TRACE)):
            self.trace.root.setwriter(log.debug)
            self.enable_tracing()

    # -- pluggy customisation -------------------------------------------------------------

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        """Only ``shoal_*`` attributes are hooks; an undecorated ``shoal_*`` function is an error."""
        if not name.startswith(HOOK_PREFIX):
            return None
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None:
            attr = getattr(plugin, name, None)
            if callable(attr):
                raise PluginError(
                    f"Plugin {self._describe_plugin_object(plugin)} defines {name}() without @hookimpl; "
                    f"decorate it with `from shoal import hookimpl` / `@hookimpl`."
                )
        return opts

    # -- registration ---------------------------------------------------------------------

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        """pluggy's ``register``; the collected contributions are forgotten."""
        self.contributions.clear()
        return super().register(plugin, name)

    def unregister(self, plugin: Any | None = None, name: str | None = None) -> Any | None:
        """pluggy's ``unregister`` (blocking a plugin goes through it too); the collected
        contributions are forgotten."""
        self.contributions.clear()
        return super().unregister(plugin, name)

    def block(self, name: str) -> None:
        """Never register a plugin of this name (built-in or third-party)."""
        self._blocked_names.add(name)
        self.set_blocked(name)

    def register_plugin(
        self,
        plugin: object,
        name: str | None = None,
        *,
        source: PluginSource | None = None,
        distribution: str | None = None,
        version: str | None = None,
        target: str | None = None,
    ) -> str | None:
        """Register ``plugin`` (a module or an object with ``shoal_*`` hook methods).

        Returns the plugin's name, or None when it is blocked. Raises :class:`PluginError`
        when the name is taken or a hook does not match its spec.
        """
        if isinstance(plugin, type):
            raise PluginError(
                f"register_plugin() got the class {plugin.__qualname__}; register an instance: "
                f"{plugin.__qualname__}()"
            )
        if isinstance(plugin, ModuleType):
            module_name = plugin.__name__
            default_target = module_name
            default_source: PluginSource = "module"
        else:
            module_name = type(plugin).__module__
            default_target = f"{module_name}:{type(plugin).__qualname__}"
            default_source = "object"
        name = name or (module_name.rsplit(".", 1)[-1] if isinstance(plugin, ModuleType) else default_target)
        if self.is_blocked(name):
            return None
        if distribution is None:
            distribution, found_version = _distribution_of_module(module_name)
            version = version if version is not None else found_version
        record = PluginRecord(
            name=name,
            distribution=distribution,
            version=version or "",
            source=source or default_source,
            target=target or default_target,
        )
        existing = self._records.get(name)
        if existing is not None:
            raise PluginError(
                f"Two plugins are named '{name}': {existing.describe()} and "
                f"{record.describe()}. Uninstall one, or block one with {ENV_BLOCKED}={name}."
            )
        try:
            registered = self.register(plugin, name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(f"Plugin {record.describe()} is invalid: {exc}") from exc
        except ValueError as exc:
            raise PluginError(f"Plugin {record.describe()} could not be registered: {exc}") from exc
        if registered is None:
            return None
        self._records[name] = record
        return name

    def unregister_plugin(self, name: str) -> None:
        """Remove a registered plugin by name (no error if it is not registered)."""
        plugin = self.get_plugin(name)
        if plugin is not None:
            self.unregister(plugin, name)
        self._records.pop(name, None)

    def register_builtin(self, module_name: str) -> str | None:
        """Import and register one built-in plugin module."""
        name = module_name.rsplit(".", 1)[-1]
        if self.is_blocked(name):
            return None
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise PluginError(
                f"Built-in plugin '{name}' (distribution shoal {_shoal_version()}) failed to import "
                f"({module_name}): {type(exc).__name__}: {exc}. Block it with {ENV_BLOCKED}={name} "
                f"or repair the installation."
            ) from exc
        return self.register_plugin(
            module, name, source="builtin", distribution="shoal", version=_shoal_version(), target=module_name
        )

    def iter_entry_points(self) -> Iterator[tuple[importlib.metadata.EntryPoint, str, str]]:
        """Yield ``(entry point, distribution, version)`` for the ``shoal`` group, de-duplicated."""
        seen: set[tuple[str, str]] = set()
        for dist in importlib.metadata.distributions():
            # entry_points.txt first: parsing every distribution's METADATA (for its name) took
            # most of a plugin manager's start, and few distributions have a shoal entry point
            ours = [ep for ep in dist.entry_points if ep.group == ENTRY_POINT_GROUP]
            if not ours:
                continue
            dist_name = dist.metadata["Name"] or "(unknown)"
            for ep in ours:
                key = (ep.name, dist_name.lower())
                if key in seen:  # the same distribution visible twice on sys.path
                    continue
                seen.add(key)
                yield ep, dist_name, dist.version

    def load_entrypoint_plugins(self, only: Iterable[str] | None = None) -> list[str]:
        """Import and register plugins from the ``shoal`` entry-point group.

        ``only`` restricts loading to those names (workers use it). Import errors are never
        hidden: they become a :class:`PluginError` naming the plugin and its distribution.
        """
        wanted = set(only) if only is not None else None
        loaded: list[str] = []
        for ep, dist_name, version in self.iter_entry_points():
            if wanted is not None and ep.name not in wanted:
                continue
            if self.is_blocked(ep.name):
                continue
            record = PluginRecord(ep.name, dist_name, version, "entrypoint", ep.value)
            if ep.name in self._records:
                raise PluginError(
                    f"Two plugins are named '{ep.name}': {self._records[ep.name].describe()} and "
                    f"{record.describe()}. Uninstall one, or block one with {ENV_BLOCKED}={ep.name}."
                )
            try:
                plugin = ep.load()
            except Exception as exc:
                raise PluginError(
                    f"Plugin {record.describe()} failed to import ({ep.value}): "
                    f"{type(exc).__name__}: {exc}. Fix or uninstall {dist_name}, or block the plugin "
                    f"with {ENV_BLOCKED}={ep.name}."
                ) from exc
            if isinstance(plugin, type):
                plugin = plugin()
            name = self.register_plugin(
                plugin, ep.name, source="entrypoint", distribution=dist_name, version=version, target=ep.value
            )
            if name:
                loaded.append(name)
        return loaded

    def verify(self) -> None:
        """Raise :class:`PluginError` if any plugin implements a hook that has no spec."""
        try:
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            plugin_name = self.get_name(exc.plugin) or "?"
            record = self._records.get(plugin_name)
            who = record.describe() if record else f"'{plugin_name}'"
            match = re.search(r"unknown hook '([^']+)'", str(exc))
            hook = match.group(1) if match else "?"
            known = sorted(
                n
                for n in dir(self.hook)
                if n.startswith(HOOK_PREFIX) and getattr(self.hook, n).spec is not None
            )
            close = difflib.get_close_matches(hook, known, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise PluginError(
                f"Plugin {who} implements unknown hook '{hook}'.{hint} Known hooks: {', '.join(known)}."
            ) from exc

    # -- introspection --------------------------------------------------------------------

    def records(self) -> list[PluginRecord]:
        """Every registered plugin, in registration order."""
        return list(self._records.values())

    def record(self, name: str) -> PluginRecord | None:
        return self._records.get(name)

    def hooks_of(self, name: str) -> list[str]:
        """Names of the hooks plugin ``name`` implements, sorted."""
        plugin = self.get_plugin(name)
        if plugin is None:
            return []
        callers = self.get_hookcallers(plugin) or []
        return sorted(caller.name for caller in callers)

    def manifest(self) -> PluginManifest:
        """The picklable description of this manager that workers rebuild from."""
        from shoal.compat import installed_layers

        return PluginManifest(
            plugins=tuple(self.records()),
            blocked=tuple(sorted(self._blocked_names)),
            compat=installed_layers(),
        )

    def _describe_plugin_object(self, plugin: object) -> str:
        if isinstance(plugin, ModuleType):
            return f"module {plugin.__name__}"
        return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


@dataclass
class _Cache:
    manager: ShoalPluginManager | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


_cache = _Cache()


def make_plugin_manager(
    *,
    autoload: bool | None = None,
    blocked: Iterable[str] = (),
    plugins: Iterable[object] = (),
    builtins: Iterable[str] = BUILTIN_PLUGINS,
) -> ShoalPluginManager:
    """Build a fresh plugin manager: built-ins, then entry points, then ``plugins``; then verify.

    ``autoload=None`` follows ``SHOAL_DISABLE_PLUGIN_AUTOLOAD``; ``blocked`` adds to
    ``SHOAL_BLOCKED_PLUGINS``.
    """
    pm = ShoalPluginManager()
    for name in sorted(blocked_from_env() | set(blocked)):
        pm.block(name)
    for module_name in builtins:
        pm.register_builtin(module_name)
    if autoload if autoload is not None else autoload_from_env():
        pm.load_entrypoint_plugins()
    for plugin in plugins:
        pm.register_plugin(plugin)
    pm.verify()
    return pm


def get_plugin_manager() -> ShoalPluginManager:
    """The plugin manager of this process, built on first use."""
    with _cache.lock:
        if _cache.manager is None:
            _cache.manager = make_plugin_manager()
        return _cache.manager


def set_plugin_manager(pm: ShoalPluginManager | None) -> ShoalPluginManager | None:
    """Replace this process's plugin manager (None: rebuild on next use); returns the old one."""
    with _cache.lock:
        previous, _cache.manager = _cache.manager, pm
        return previous


def register_plugin(plugin: object, name: str | None = None) -> str | None:
    """Register a plugin (module or object) with this process's plugin manager, and verify it.

    Use it in notebooks and tests; installed distributions are found through entry points.
    The plugin must be importable on workers too (a module, or an instance of a class with a
    no-argument constructor), because workers rebuild plugins by name.
    """
    pm = get_plugin_manager()
    registered = pm.register_plugin(plugin, name)
    try:
        pm.verify()
    except PluginError:
        if registered:
            pm.unregister_plugin(registered)
        raise
    return registered


def unregister_plugin(name: str) -> None:
    """Remove a plugin from this process's plugin manager."""
    get_plugin_manager().unregister_plugin(name)

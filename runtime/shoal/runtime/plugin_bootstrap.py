"""Rebuild the driver's plugin manager inside a worker process.

The driver sends a :class:`~shoal.plugin_manager.PluginManifest` (plugin names, where each came
from, distributions and versions), never the manager itself. A worker calls
:func:`install_worker_plugin_manager` once per process: it registers exactly the driver's
plugins, from the same sources, and fails with a :class:`~shoal.errors.PluginError` that lists
every difference (missing plugin, other version) when this node's environment does not match.

Runs on workers (Ray tasks and actors on any node of a job).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import socket
from typing import Any

from shoal.errors import PluginError
from shoal.plugin_manager import (
    PluginManifest,
    PluginRecord,
    ShoalPluginManager,
    get_plugin_manager,
    set_plugin_manager,
)

_installed_from: PluginManifest | None = None


def _installed_version(distribution: str) -> str | None:
    if distribution == "shoal":
        from shoal import __version__

        return __version__
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _load_object(target: str) -> Any:
    module_name, _, qualname = target.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj() if isinstance(obj, type) else obj


def _register(pm: ShoalPluginManager, record: PluginRecord) -> None:
    if record.source == "builtin":
        pm.register_builtin(record.target)
    elif record.source == "entrypoint":
        pm.load_entrypoint_plugins(only=[record.name])
        if pm.get_plugin(record.name) is None:
            raise PluginError(f"entry point '{record.name}' of group 'shoal' is not installed on this node")
    elif record.source == "module":
        pm.register_plugin(importlib.import_module(record.target), record.name, source="module")
    else:
        pm.register_plugin(_load_object(record.target), record.name, source="object", target=record.target)


def build_worker_plugin_manager(manifest: PluginManifest) -> ShoalPluginManager:
    """Build a plugin manager holding exactly the manifest's plugins, or explain what differs."""
    pm = ShoalPluginManager()
    for name in manifest.blocked:
        pm.block(name)
    problems: list[str] = []
    for record in manifest.plugins:
        installed = _installed_version(record.distribution)
        if installed is None and record.source != "object" and record.distribution != "(local code)":
            problems.append(f"missing plugin {record.describe()}: distribution not installed")
            continue
        if installed is not None and record.version and installed != record.version:
            problems.append(
                f"plugin {record.describe()}: this node has {record.distribution} {installed}, "
                f"the driver has {record.version}"
            )
            continue
        try:
            _register(pm, record)
        except Exception as exc:
            problems.append(f"plugin {record.describe()} could not be loaded: {type(exc).__name__}: {exc}")
    if problems:
        raise PluginError(
            f"The plugins on node {socket.gethostname()} differ from the driver's:\n  - "
            + "\n  - ".join(problems)
            + "\nInstall the same distributions and versions on every node; a plugin module of your own "
            "must be importable there too (docs/plugins.md, 'How a plugin reaches the nodes')."
        )
    pm.verify()
    return pm


def install_worker_plugin_manager(manifest: PluginManifest) -> ShoalPluginManager:
    """Make the manifest's plugin manager this process's own (idempotent for the same manifest)."""
    global _installed_from
    from shoal.compat import install_layers

    install_layers(manifest.compat)  # before anything of the job is unpickled
    if _installed_from == manifest:
        return get_plugin_manager()
    pm = build_worker_plugin_manager(manifest)
    set_plugin_manager(pm)
    _installed_from = manifest
    return pm


def describe_worker_plugins(manifest: PluginManifest) -> dict[str, Any]:
    """Install the manifest's plugins in this worker and report what it got.

    Used by ``shoal`` itself as a pre-flight check on each node of a job, and by tests.
    Returns the plugin records and the names each contribution kind resolves to.
    """
    from shoal import hooks
    from shoal.contributions import CONTRIBUTION_TYPES

    pm = install_worker_plugin_manager(manifest)
    return {
        "host": socket.gethostname(),
        "plugins": [(r.name, r.distribution, r.version) for r in pm.records()],
        "contributions": {kind: sorted(hooks.collect(kind, pm)) for kind in CONTRIBUTION_TYPES},
    }

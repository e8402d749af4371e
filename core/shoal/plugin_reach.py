"""Check, before a job or run starts, that a pool's nodes can import the plugins this process
registered by hand (driver).

Plugins from installed distributions (built-ins, entry points) reach the nodes with the
installation. A plugin registered with :func:`shoal.plugin_manager.register_plugin` from a module
of the user's own (a script's folder, a notebook's helper) reaches them only if that module is
importable there too: workers rebuild plugins by name (:mod:`shoal.runtime.plugin_bootstrap`).
Without this check such a run starts, its nodes fail to rebuild the plugins, and the cause shows
only in the job's logs.

The pool's backend answers (:meth:`~shoal.pools.backend.ComputePoolBackend.importable_on_nodes`):
a local pool looks with its nodes' own interpreter and ``PYTHONPATH``; a backend that cannot tell
from the driver answers None, and the nodes' own error then names the cause (the job's message,
the run's message).
"""

from __future__ import annotations

import sys
from collections.abc import Collection

from shoal.errors import PluginError
from shoal.plugin_manager import PluginManifest, PluginRecord, get_plugin_manager


def hand_registered(manifest: PluginManifest) -> dict[str, PluginRecord]:
    """The top-level module each hand-registered plugin needs on the nodes, with its record."""
    needed: dict[str, PluginRecord] = {}
    for record in manifest.plugins:
        if record.source in ("module", "object"):
            module = record.target.partition(":")[0]
            needed.setdefault(module.split(".")[0], record)
    return needed


def _where(module: str) -> str:
    found = sys.modules.get(module)
    file = getattr(found, "__file__", None)
    return f" ({file})" if file else ""


def unreachable_message(pool: str, missing: dict[str, PluginRecord], pool_running: bool) -> str:
    """What is wrong and what to do, for plugins whose modules the pool's nodes cannot import."""
    lines = []
    for module, record in sorted(missing.items()):
        if module == "__main__":
            lines.append(
                f"plugin '{record.name}' is an instance of {record.target.partition(':')[2]}, defined in the "
                f"script or notebook itself: nodes cannot import that; move the class to a module"
            )
        else:
            lines.append(f"plugin '{record.name}' comes from module {module}{_where(module)}")
    restart = (
        f" (pool {pool} is running: stop it with `shoal pool stop {pool}` and it starts again with the "
        f"new PYTHONPATH when next used)"
        if pool_running
        else ""
    )
    return (
        f"The nodes of compute pool {pool} cannot import the plugins registered in this process, so the "
        f"job would fail on them:\n  - "
        + "\n  - ".join(lines)
        + "\nMake each module importable on every node: install it (`pip install -e` its project), or put "
        f"its folder on PYTHONPATH before the pool starts{restart}; a job can also ship it with "
        f"imports=[module]. Or unregister the plugin (shoal.plugin_manager.unregister_plugin(name))."
    )


def check_plugins_reach_nodes(pool: str, shipped: Collection[str] = ()) -> None:
    """Raise :class:`PluginError` when the nodes of ``pool`` cannot import a hand-registered
    plugin's module. ``shipped``: top-level module names the job's own files provide. Does
    nothing (and costs nothing) when no plugin was registered by hand."""
    needed = {
        module: record
        for module, record in hand_registered(get_plugin_manager().manifest()).items()
        if module not in shipped
    }
    if not needed:
        return
    from shoal.pools.api import get_backend

    backend = get_backend(pool)
    answer = backend.importable_on_nodes(sorted(m for m in needed if m != "__main__"))
    if answer is None:  # the backend cannot tell from here: the nodes will say
        return
    missing = {m: r for m, r in needed.items() if m == "__main__" or not answer.get(m, False)}
    if missing:
        raise PluginError(unreachable_message(pool, missing, backend.is_running()))

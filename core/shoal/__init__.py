"""shoal: multi-node ML jobs, distributed partition functions and distributed trainers on Ray.

The public API is re-exported here and imported lazily, so ``import shoal`` stays cheap and
never imports Ray or an ML framework. Plugin authors need only :data:`hookimpl` and the spec
types in :mod:`shoal.contributions`.
"""

from __future__ import annotations

__path__ = __import__("pkgutil").extend_path(__path__, __name__)

import importlib
from typing import TYPE_CHECKING, Any

from shoal._version import __version__
from shoal.display.surface import quiet_foreign_widget_warnings
from shoal.hookspecs import hookimpl

quiet_foreign_widget_warnings()

if TYPE_CHECKING:
    from shoal.errors import (
        ConfigError,
        PluginError,
        ShoalError,
        StageError,
        StageExistsError,
        StageNotFoundError,
        StagePathError,
    )
    from shoal.plugin_manager import register_plugin, unregister_plugin
    from shoal.pools.api import (
        create_compute_pool,
        describe_compute_pool,
        drop_compute_pool,
        list_compute_pools,
        start_compute_pool,
        stop_compute_pool,
    )
    from shoal.pools.default import set_default_compute_pool
    from shoal.pools.idle import stop_idle_nodes
    from shoal.stages import Stage, create_stage, drop_stage, get_stage, list_stages

_LAZY: dict[str, str] = {
    "create_stage": "shoal.stages",
    "list_stages": "shoal.stages",
    "drop_stage": "shoal.stages",
    "get_stage": "shoal.stages",
    "Stage": "shoal.stages",
    "create_compute_pool": "shoal.pools.api",
    "list_compute_pools": "shoal.pools.api",
    "describe_compute_pool": "shoal.pools.api",
    "drop_compute_pool": "shoal.pools.api",
    "start_compute_pool": "shoal.pools.api",
    "stop_compute_pool": "shoal.pools.api",
    "set_default_compute_pool": "shoal.pools.default",
    "stop_idle_nodes": "shoal.pools.idle",
    "register_plugin": "shoal.plugin_manager",
    "unregister_plugin": "shoal.plugin_manager",
    "ShoalError": "shoal.errors",
    "PluginError": "shoal.errors",
    "ConfigError": "shoal.errors",
    "StageError": "shoal.errors",
    "StageExistsError": "shoal.errors",
    "StageNotFoundError": "shoal.errors",
    "StagePathError": "shoal.errors",
}

__all__ = [
    "ConfigError",
    "PluginError",
    "ShoalError",
    "Stage",
    "StageError",
    "StageExistsError",
    "StageNotFoundError",
    "StagePathError",
    "__version__",
    "create_compute_pool",
    "create_stage",
    "describe_compute_pool",
    "drop_compute_pool",
    "drop_stage",
    "get_stage",
    "hookimpl",
    "list_compute_pools",
    "list_stages",
    "register_plugin",
    "set_default_compute_pool",
    "start_compute_pool",
    "stop_compute_pool",
    "stop_idle_nodes",
    "unregister_plugin",
]


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'shoal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

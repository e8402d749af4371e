"""Helpers for testing shoal plugins (and shoal itself).

.. code-block:: python

    from shoal.testing import temporary_plugin

    def test_my_backend(tmp_path):
        with temporary_plugin(my_plugin_module):
            stage = shoal.create_stage("s", url="mine://x")
            ...

Runs in the test process (the driver).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from shoal.plugin_manager import (
    ShoalPluginManager,
    get_plugin_manager,
    make_plugin_manager,
    register_plugin,
    set_plugin_manager,
)


@contextmanager
def temporary_plugin(plugin: object, name: str | None = None) -> Iterator[str | None]:
    """Register ``plugin`` with this process's plugin manager for the ``with`` block."""
    registered = register_plugin(plugin, name)
    try:
        yield registered
    finally:
        if registered:
            get_plugin_manager().unregister_plugin(registered)


@contextmanager
def fresh_plugin_manager(
    *, autoload: bool | None = False, blocked: Iterable[str] = (), plugins: Iterable[object] = ()
) -> Iterator[ShoalPluginManager]:
    """Use a freshly built plugin manager (no entry points by default) for the ``with`` block."""
    pm = make_plugin_manager(autoload=autoload, blocked=blocked, plugins=plugins)
    previous = set_plugin_manager(pm)
    try:
        yield pm
    finally:
        set_plugin_manager(previous)

"""Compatibility layers: code written for another product runs on shoal unmodified.

:mod:`shoal.compat.snowflake` makes the import paths of Snowflake's Container Runtime
(``snowflake.ml.modeling.distributors``, ``snowflake.ml.jobs``, ``snowflake.ml.data``, ...)
resolve to shoal. Runs on the driver, and in jobs and workers started from it.
"""

from __future__ import annotations

_installed: list[str] = []


def installed_layers() -> tuple[str, ...]:
    """The compatibility layers installed in this process (carried to workers by the plugin
    manifest, which installs them there too)."""
    return tuple(_installed)


def mark_installed(layer: str) -> None:
    if layer not in _installed:
        _installed.append(layer)


def mark_uninstalled(layer: str) -> None:
    if layer in _installed:
        _installed.remove(layer)


def install_layers(layers: tuple[str, ...]) -> None:
    """Worker side: install the layers the driver had."""
    for layer in layers:
        if layer == "snowflake":
            from shoal.compat.snowflake import install

            install(quiet=True)

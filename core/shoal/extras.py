"""Optional frameworks, the extras of shoal that install them, and the error when one is missing.

shoal's estimator plugins stay registered whether or not their framework is installed (listing
them never imports it). Using one whose framework is missing raises :class:`MissingExtraError`
naming the exact ``pip install`` to run, before anything is submitted, reserved or started:
:func:`require` looks the modules up without importing them (``importlib.util.find_spec``).

Runs on the driver (the caller, the CLI).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from shoal.errors import MissingExtraError

#: a framework's top-level module -> the extra of shoal that installs it
EXTRA_OF_MODULE: dict[str, str] = {
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "snowflake.snowpark": "snowpark",
    "fakesnow": "snowpark",
    "s3fs": "s3",
    "gcsfs": "gcs",
    "aiohttp": "dashboard",
    "aiohttp_cors": "dashboard",
    "grpc": "dashboard",
    "opencensus": "dashboard",
    "prometheus_client": "dashboard",
    "starlette": "ui",
    "uvicorn": "ui",
    "jinja2": "ui",
    "optuna": "tune",
}

#: what Ray's dashboard imports beyond ``ray[data]`` (``ray.dashboard.optional_deps``); the
#: ``dashboard`` extra installs them through ``ray[default]``
DASHBOARD_MODULES: tuple[str, ...] = ("aiohttp", "aiohttp_cors", "grpc", "opencensus", "prometheus_client")


def is_installed(module: str) -> bool:
    """Whether ``module`` can be imported here (found, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module set to None
        return False


def install_hint(module: str) -> str:
    """What to run to get ``module``: shoal's extra for it, else a plain description."""
    extra = EXTRA_OF_MODULE.get(module)
    if extra is not None:
        return f"pip install 'shoal[{extra}]'"
    return f"install the package that provides the {module!r} module"


def missing(modules: Iterable[str]) -> list[str]:
    """The ones of ``modules`` that are not installed, in order."""
    return [module for module in modules if not is_installed(module)]


def require(modules: Iterable[str], what: str) -> None:
    """Raise :class:`MissingExtraError` when any of ``modules`` is not installed; ``what`` names
    the user's object (``"the 'xgboost' estimator"``)."""
    absent = missing(modules)
    if absent:
        hints = sorted({install_hint(module) for module in absent})
        raise MissingExtraError(
            f"{what} needs {', '.join(absent)}, which is not installed in this Python "
            f"({__import__('sys').executable}); run: {'; '.join(hints)}",
            name=absent[0],
        )

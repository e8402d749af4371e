"""Where the driver's output goes, decided once per display.

Runs on the driver.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from enum import Enum

#: set to ``widgets``, ``notebook-text``, ``terminal`` or ``log`` to choose the surface by hand
SURFACE_VAR = "SHOAL_DISPLAY"


class Surface(Enum):
    """Where output goes."""

    #: a Jupyter kernel with ipywidgets (``pip install 'shoal[notebook]'``): widget bars
    WIDGETS = "widgets"
    #: a Jupyter kernel without ipywidgets: plain-text bars that update in place
    NOTEBOOK_TEXT = "notebook-text"
    #: a terminal: rich's bars on standard error
    TERMINAL = "terminal"
    #: neither (a log file, a pipe, CI): a line every few seconds, no bar
    LOG = "log"


def in_kernel() -> bool:
    """Whether this process is a Jupyter kernel (IPython's kernel app, not a terminal IPython)."""
    if "IPython" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def has_widgets() -> bool:
    """Whether ipywidgets can be imported (in a kernel: it is imported to show a bar anyway)."""
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def current_surface() -> Surface:
    """The surface of this process now (``SHOAL_DISPLAY`` overrides)."""
    chosen = os.environ.get(SURFACE_VAR, "").strip().lower()
    if chosen:
        try:
            return Surface(chosen)
        except ValueError:
            names = ", ".join(s.value for s in Surface)
            raise ValueError(
                f"{SURFACE_VAR}={chosen!r} is not a display surface; use one of {names}"
            ) from None
    if in_kernel():
        return Surface.WIDGETS if has_widgets() else Surface.NOTEBOOK_TEXT
    if sys.stderr is not None and sys.stderr.isatty():
        return Surface.TERMINAL
    return Surface.LOG


def _not_about_ipywidgets(record: logging.LogRecord) -> bool:
    return "ipywidgets" not in record.getMessage()


def quiet_foreign_widget_warnings() -> None:
    """In a Jupyter kernel without ipywidgets, ``import ray`` warns twice that ipywidgets is
    missing: tqdm's "IProgress not found" (Ray's own tqdm bars) and Ray's "Missing packages:
    ['ipywidgets']" (its rich notebook output). shoal shows its progress without ipywidgets (a
    text bar), so both would only mislead; they are silenced, and nothing else is. Run at
    ``import shoal``; outside a kernel it does nothing."""
    if "IPython" not in sys.modules:
        return
    warnings.filterwarnings("ignore", message="IProgress not found")
    logging.getLogger("ray.widgets.util").addFilter(_not_about_ipywidgets)

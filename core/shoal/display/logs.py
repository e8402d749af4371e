"""Logs shown to a person: printed on a terminal, scrollable pre-formatted text in a notebook.

Runs on the driver.
"""

from __future__ import annotations

import sys

from shoal.display.surface import in_kernel


def show_text(text: str, title: str) -> None:
    """Print ``text``; in a Jupyter kernel, display it as a titled box that scrolls."""
    if not in_kernel():
        print(text, file=sys.stdout)
        return
    from IPython.display import HTML, display

    from shoal.display.html import pre

    display(HTML(pre(text, title)))

"""Where the web view (``shoal ui``) serves this workspace, for links from a notebook.

``shoal ui`` records its address in ``$SHOAL_HOME/ui.json`` while it serves on a loopback
address (nothing is recorded for one that needs a token: a link without it would not open), and
removes it when it stops. Runs on the driver and in the ``shoal ui`` process.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shoal.localfiles import write_atomically

RECORD = "ui.json"


def _record_path() -> Path:
    from shoal.workspace import shoal_home

    return shoal_home() / RECORD


def record_serving(url: str) -> None:
    """``shoal ui``: this process serves the web view at ``url``."""
    path = _record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, json.dumps({"url": url.rstrip("/"), "pid": os.getpid()}), durable=False)


def forget_serving() -> None:
    """``shoal ui``: this process no longer serves (only its own record is removed)."""
    path = _record_path()
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def web_view_url() -> str | None:
    """The web view's address, when a ``shoal ui`` of this workspace serves now; else None."""
    import psutil

    try:
        record = json.loads(_record_path().read_text())
        url, pid = str(record["url"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return url if psutil.pid_exists(pid) else None

"""The shoal workspace: where the embedded defaults live on this machine.

``SHOAL_HOME`` (environment variable) names the folder; without it the per-user data folder
is used (``~/.local/share/shoal`` on Linux, ``~/Library/Application Support/shoal`` on macOS).
Layout::

    $SHOAL_HOME/
        catalog/stages.json   the stage catalog (name -> URL)
        stages/<NAME>/        the contents of default (local) stages

Later parts add the DuckDB warehouse, compute-pool state and job records here.

Runs on the driver, and on workers of a local compute pool (same machine, same folder).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "SHOAL_HOME"


def shoal_home() -> Path:
    """Return the workspace folder (created if missing), honouring ``SHOAL_HOME``."""
    configured = os.environ.get(ENV_HOME, "").strip()
    if configured:
        home = Path(configured).expanduser()
    else:
        from platformdirs import user_data_dir

        home = Path(user_data_dir("shoal", appauthor=False))
    home.mkdir(parents=True, exist_ok=True)
    return home.resolve()


def workspace_dir(*parts: str) -> Path:
    """Return (and create) a sub-folder of the workspace, e.g. ``workspace_dir("stages")``."""
    path = shoal_home().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path

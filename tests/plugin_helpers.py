"""Build real, tiny installed distributions on disk for plugin-discovery tests.

A distribution here is what pip would leave behind: a module plus a ``*.dist-info`` folder
with ``METADATA`` and ``entry_points.txt``. Putting the folder on ``sys.path`` makes
``importlib.metadata`` (and so shoal's entry-point discovery) find it: no mocks.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import textwrap
from pathlib import Path


def pip_install_into(project: Path, target: Path) -> None:
    """``pip install --no-deps --target`` a project folder (an example distribution)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def make_distribution(
    site: Path,
    dist_name: str,
    version: str,
    *,
    entry_point: str,
    module: str,
    source: str,
) -> Path:
    """Write ``module.py`` and its dist-info into ``site``; return ``site``."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist_name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[shoal]\n{entry_point} = {module}\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}.py,,\n")
    importlib.invalidate_caches()
    return site


def forget_module(name: str) -> None:
    """Drop a test module from sys.modules so the next import reads it from disk again."""
    sys.modules.pop(name, None)

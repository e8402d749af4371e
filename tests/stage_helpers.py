"""Helpers shared by the stage tests: the test's SHOAL_HOME and running code in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from conftest import REPO_ROOT


def home() -> Path:
    """The SHOAL_HOME the autouse fixture set for this test."""
    return Path(os.environ["SHOAL_HOME"])


def catalog_file() -> Path:
    return home() / "catalog" / "stages.json"


def python_command(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code), *args]


def python_env() -> dict[str, str]:
    """This process's environment (same SHOAL_HOME) with the source tree importable."""
    source = [str(REPO_ROOT / part) for part in ("core", "plugins", "runtime")]
    inherited = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([*source, *([inherited] if inherited else [])])}


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; return the finished process (output captured as text)."""
    return subprocess.run(
        python_command(code, *args), capture_output=True, text=True, env=python_env(), timeout=timeout
    )


def hide_package(monkeypatch: Any, package: str) -> None:
    """Make ``package`` look not installed for the rest of a test (``import`` raises ImportError),
    and forget the fsspec file system classes fsspec already loaded from it."""
    from fsspec.registry import _registry

    monkeypatch.setitem(sys.modules, package, None)
    for protocol, cls in list(_registry.items()):
        if cls.__module__.split(".")[0] == package:
            monkeypatch.delitem(_registry, protocol)

"""Shared fixtures: every test gets its own SHOAL_HOME and a fresh plugin manager."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.plugin_manager import set_plugin_manager

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point SHOAL_HOME at a temporary folder and start from a fresh plugin manager."""
    home = tmp_path / "home"
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.delenv("SHOAL_BLOCKED_PLUGINS", raising=False)
    monkeypatch.delenv("SHOAL_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    set_plugin_manager(None)
    yield home
    set_plugin_manager(None)

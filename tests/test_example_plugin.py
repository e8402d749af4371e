"""The worked example plugin, installed as its own distribution, is found through the ``shoal``
entry point and used: no manual registration anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from plugin_helpers import pip_install_into

pytestmark = pytest.mark.slow

EXAMPLE = REPO_ROOT / "examples" / "shoal-sqlite-stage"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("example-site")
    pip_install_into(EXAMPLE, target)
    return target


def _env(installed: Path, home: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(installed), "SHOAL_HOME": str(home)}


def test_example_plugin_is_listed_with_its_distribution(installed: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shoal", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=_env(installed, tmp_path),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = {row["name"]: row for row in json.loads(done.stdout)}
    assert rows["sqlite_stage"] == {
        "name": "sqlite_stage",
        "distribution": "shoal-sqlite-stage",
        "version": "0.1.0",
        "source": "entrypoint",
        "target": "shoal_sqlite_stage",
        "hooks": ["shoal_stage_backends"],
        "contributes": {"stage_backends": ["sqlite"]},
        "needs": [],
    }


def test_example_plugin_serves_a_stage_through_the_entry_point(installed: Path, tmp_path: Path) -> None:
    db = tmp_path / "stage.db"
    env = _env(installed, tmp_path / "home")
    cli = [sys.executable, "-m", "shoal", "stage"]
    steps = [
        [*cli, "create", "models", "--url", f"sqlite://{db}"],
        [*cli, "put", str(EXAMPLE / "README.md"), "@models/docs"],
        [*cli, "get", "@MODELS/docs/README.md", str(tmp_path / "back")],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, f"{step}: {done.stderr}"
    assert (tmp_path / "back" / "README.md").read_bytes() == (EXAMPLE / "README.md").read_bytes()
    import sqlite3

    rows = sqlite3.connect(db).execute("SELECT path, length(data) FROM files").fetchall()
    assert rows == [("docs/README.md", (EXAMPLE / "README.md").stat().st_size)]


def test_blocking_the_example_plugin_by_name(installed: Path, tmp_path: Path) -> None:
    env = {**_env(installed, tmp_path), "SHOAL_BLOCKED_PLUGINS": "sqlite_stage"}
    done = subprocess.run(
        [sys.executable, "-m", "shoal", "stage", "create", "m", "--url", f"sqlite://{tmp_path}/x.db"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr  # a --url no backend serves: a usage error
    assert "No stage backend serves URL scheme 'sqlite://'" in done.stderr

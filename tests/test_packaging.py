"""The wheel built from the repo is one clean ``shoal`` tree that imports from a fresh venv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from conftest import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("shoal-*.whl")
    return built


def test_wheel_holds_one_shoal_tree(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "shoal/__init__.py" in names
    assert "shoal/plugins/serdes.py" in names
    assert "shoal/runtime/plugin_bootstrap.py" in names
    assert {"shoal/py.typed", "shoal/plugins/py.typed", "shoal/runtime/py.typed"} <= set(names)
    assert not [n for n in names if n.startswith(("core/", "plugins/", "runtime/", "tests/"))]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "shoal = shoal.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_wheel_imports_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "fresh"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # The dependencies (pluggy, click, ...) come from the development venv's site-packages,
    # added as a plain path: its editable shoal .pth is NOT processed there, so shoal itself can
    # only come from the wheel.
    fresh_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    dev_site = sysconfig.get_path("purelib")
    (fresh_site / "zz_dev_dependencies.pth").write_text(dev_site + "\n")
    script = (
        "import json, shoal, shoal.plugins.serdes, shoal.runtime.plugin_bootstrap\n"
        "from shoal.cli.plugins_cmd import plugin_table\n"
        "print(json.dumps({'files': [shoal.__file__, shoal.plugins.serdes.__file__,"
        " shoal.runtime.plugin_bootstrap.__file__], 'plugins': [r['name'] for r in plugin_table()]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    for file in result["files"]:
        assert file.startswith(str(fresh_site)), f"{file} must come from the installed wheel"
    assert {"local_stage", "fsspec_stage", "serdes"} <= set(result["plugins"])
    assert sys.prefix != sys.base_prefix, "the dev environment is a venv with its own site-packages"

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
    """``python -m build``: the sdist, then the wheel built from that sdist (so a file missing
    from the sdist is missing from the wheel too)."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(list(out.glob("shoal-*.tar.gz"))) == 1, "the sdist"
    (built,) = out.glob("shoal-*.whl")
    return built


def package_files() -> set[str]:
    """What the package needs at run time, as wheel paths: every module and marker file of the
    three source trees (core/, plugins/, runtime/ all map onto the one ``shoal`` package)."""
    wanted = set()
    for tree in ("core", "plugins", "runtime"):
        for file in (REPO_ROOT / tree).rglob("*"):
            if file.is_file() and "__pycache__" not in file.parts:
                wanted.add(file.relative_to(REPO_ROOT / tree).as_posix())
    return wanted


def test_wheel_holds_one_shoal_tree(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    package = {n for n in names if not n.startswith("shoal-")}
    assert package == package_files(), (
        f"missing: {sorted(package_files() - package)}; extra: {sorted(package - package_files())}"
    )
    assert {"shoal/py.typed", "shoal/plugins/py.typed", "shoal/runtime/py.typed"} <= set(names)
    assert not [n for n in names if n.startswith(("core/", "plugins/", "runtime/", "tests/", "bench/"))]
    metadata = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("/METADATA"))).decode()
    extras = {line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Provides-Extra: ")}
    assert {
        "xgboost",
        "lightgbm",
        "torch",
        "snowpark",
        "s3",
        "gcs",
        "dashboard",
        "notebook",
        "ui",
        "tune",
        "all",
    } <= extras
    required = [line for line in metadata.splitlines() if line.startswith("Requires-Dist: ")]
    core = [line for line in required if "extra ==" not in line]
    assert not [
        line for line in core if any(f in line for f in ("xgboost", "lightgbm", "torch", "snowpark"))
    ], core
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


def test_the_core_install_runs_a_job_and_a_dpf_and_names_the_missing_extra(
    wheel: Path, tmp_path: Path
) -> None:
    """The wheel without extras, its dependencies from the package registry (pip's cache reused),
    in a fresh venv: ``shoal --help``, a job and a DPF on a 1-node pool; XGBoost is not there, and
    its estimator says which extra to install before anything is written."""
    venv = tmp_path / "core"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["SHOAL_HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    absent = ("xgboost", "lightgbm", "torch", "snowflake.snowpark", "fakesnow", "s3fs", "aiohttp")
    found = subprocess.run(
        [str(python), "-c", f"from shoal.extras import missing; print(len(missing({absent!r})))"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert found.stdout.strip() == str(len(absent)), f"none of {absent} is in the core install: {found}"
    imported = subprocess.run(
        [str(python), "-c", "import xgboost"], capture_output=True, text=True, env=env, timeout=60
    )
    assert imported.returncode == 1, imported
    assert "No module named 'xgboost'" in imported.stderr
    helped = subprocess.run(
        [str(venv / "bin" / "shoal"), "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert helped.returncode == 0, helped.stderr
    assert "Usage: shoal" in helped.stdout
    shown = subprocess.run(
        [str(venv / "bin" / "shoal"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    needs = {row["name"]: row["needs"] for row in json.loads(shown.stdout)}
    assert needs["xgboost"] == ["shoal[xgboost]"], needs
    assert needs["lightgbm"] == ["shoal[lightgbm]"], needs
    smoke = subprocess.run(
        [str(python), str(REPO_ROOT / "tests" / "install_smoke.py"), "--without-xgboost"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )
    assert smoke.returncode == 0, smoke.stdout[-4000:] + smoke.stderr[-4000:]
    seen = json.loads(smoke.stdout.strip().splitlines()[-1])
    assert seen["xgboost_error"].endswith("run: pip install 'shoal[xgboost]'"), seen
    assert seen["home_after_error"] == [], "the estimator's error comes before any pool, stage or job"
    assert seen["job"] == {"sum": 5, "python": f"{sys.version_info.major}.{sys.version_info.minor}"}
    assert (seen["job_status"], seen["dpf_status"]) == ("DONE", "SUCCESS")
    assert seen["dpf_counts"] == {"0": 10, "1": 10, "2": 10}

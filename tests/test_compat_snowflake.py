"""The Snowflake compatibility layer without a cluster: every documented name resolves, stand-ins
say what to use instead, the three ways of turning it on, and the real snowflake-ml-python
installed beside it (pip-installed into a folder here)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from shoal.errors import NotSupportedError

#: the reference's documented names (its Sphinx inventory, as a list), kept with the tests
NAMES_FILE = REPO_ROOT / "tests" / "data" / "container-runtime-api-names.txt"
STUB_MODULE = "shoal.compat.snowflake.stubs"


@pytest.fixture
def compat() -> Iterator[None]:
    import shoal.compat.snowflake as layer

    layer.install(quiet=True)
    yield
    layer.uninstall()


def documented_names() -> list[tuple[str, str]]:
    """``(full name, role)`` of every class, method, property, attribute and function listed."""
    names = []
    for line in NAMES_FILE.read_text().splitlines():
        parts = line.split()
        if len(parts) < 4 or not parts[1].startswith("py:"):
            continue
        name, role, anchor = parts[0], parts[1], parts[3]
        if "#" in anchor and not anchor.endswith("#$"):
            name = anchor.split("#", 1)[1]
        names.append((name, role))
    return names


def resolve(name: str) -> object:
    """Import the longest module prefix of ``name`` and walk the rest as attributes."""
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            fields = {f.name: f for f in dataclasses.fields(value)} if dataclasses.is_dataclass(value) else {}
            value = fields[attribute] if attribute in fields else getattr(value, attribute)
        return value
    raise ModuleNotFoundError(name)


@pytest.mark.usefixtures("compat")
def test_every_documented_name_is_importable_and_works_or_says_what_to_use() -> None:
    names = documented_names()
    assert len(names) > 100, "the names file was read"
    stand_ins = 0
    for name, role in names:
        value = resolve(name)
        owner = (
            resolve(name.rsplit(".", 1)[0]) if role in ("py:method", "py:property", "py:attribute") else value
        )
        module = getattr(owner, "__module__", "") or ""
        if role == "py:class" and module.startswith("snowflake.ml"):  # a stand-in: it refuses clearly
            stand_ins += 1
            with pytest.raises(NotSupportedError, match=r"is not supported by shoal: .*; use .* instead"):
                value()  # type: ignore[operator]
        elif role in ("py:class", "py:function"):
            assert callable(value), name
            assert module.startswith("shoal."), f"{name} is shoal's own: {module}"
    assert stand_ins >= 7, "the Ray stage sources are stand-ins"


@pytest.mark.usefixtures("compat")
def test_the_reference_import_paths_are_shoals_implementations() -> None:
    from snowflake.ml.data import DataConnector
    from snowflake.ml.jobs import MLJob, remote
    from snowflake.ml.modeling.distributors.distributed_partition_function.dpf import DPF
    from snowflake.ml.modeling.distributors.lightgbm import LightGBMEstimator
    from snowflake.ml.modeling.distributors.many_model import ManyModelTraining, PickleSerde
    from snowflake.ml.modeling.distributors.pytorch import PyTorchDistributor, get_context
    from snowflake.ml.modeling.distributors.xgboost.xgboost_estimator import XGBEstimator
    from snowflake.ml.modeling.pytorch import PyTorchTrainer, ScalingConfig, getContext
    from snowflake.ml.runtime_cluster import get_nodes, scale_cluster

    import shoal.dpf
    import shoal.jobs
    import shoal.mmt
    from shoal.plugins.torch.distributor import PyTorchDistributor as OurDistributor

    assert DPF is shoal.dpf.DPF
    assert ManyModelTraining is shoal.mmt.ManyModelTraining
    assert PickleSerde is shoal.mmt.PickleSerde
    assert MLJob is shoal.jobs.MLJob
    assert PyTorchTrainer is PyTorchDistributor is OurDistributor
    assert getContext is get_context
    assert XGBEstimator.__module__ == "shoal.plugins.xgboost.estimator"
    assert LightGBMEstimator.__module__.startswith("shoal.plugins.lightgbm")
    assert DataConnector.__module__.startswith("shoal.data")
    assert ScalingConfig.__name__ == "PyTorchScalingConfig"
    assert remote.__module__ == "shoal.compat.snowflake.jobs", "pools are created on first use"
    assert callable(scale_cluster)
    assert callable(get_nodes)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("snowflake.ml.modeling.distributors.nothing_here")


def test_uninstall_takes_the_paths_away() -> None:
    import shoal.compat.snowflake as layer

    layer.install(quiet=True)
    importlib.import_module("snowflake.ml.jobs")
    layer.uninstall()
    assert not layer.is_installed()
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("snowflake.ml.jobs")


def test_the_layer_travels_to_workers_in_the_plugin_manifest() -> None:
    import shoal.compat.snowflake as layer
    from shoal.plugin_manager import PluginManifest, get_plugin_manager

    layer.install(quiet=True)
    try:
        manifest = get_plugin_manager().manifest()
        assert manifest.compat == ("snowflake",)
        assert PluginManifest.from_json(manifest.to_json()).compat == ("snowflake",)
    finally:
        layer.uninstall()
    assert get_plugin_manager().manifest().compat == ()


SCRIPT = """
import sys
from snowflake.ml.modeling.distributors.many_model import ManyModelTraining
from snowflake.ml.runtime_cluster import get_cluster_size
print("args", sys.argv[1:], ManyModelTraining.__module__, __name__)
"""


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "shoal.compat.snowflake"],
        [sys.executable, "-m", "shoal", "run", "--snowflake-compat"],
    ],
    ids=["python -m", "shoal run"],
)
def test_a_script_runs_unmodified_through_the_module_and_the_cli(tmp_path: Path, command: list[str]) -> None:
    script = tmp_path / "reference_style.py"
    script.write_text(SCRIPT)
    done = subprocess.run(
        [*command, str(script), "--rows", "10"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "args ['--rows', '10'] shoal.mmt.training __main__"
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert "No module named 'snowflake.ml'" in plain.stderr, (
        "without the layer the reference paths do not exist"
    )


def test_with_the_real_client_installed_shoal_replaces_only_what_it_must(tmp_path: Path) -> None:
    target = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
         "snowflake-ml-python==2.6.0"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-2000:]
    code = (
        "import json, sys, shoal.compat.snowflake as c\n"
        "report = c.install()\n"
        "import snowflake.ml.version as real\n"
        "import snowflake.ml.jobs as jobs\n"
        "from snowflake.ml.modeling.distributors.xgboost import XGBEstimator\n"
        "print(json.dumps({'version': report.client_version, 'overridden': report.overridden,\n"
        "  'kept': report.kept, 'real_version': real.VERSION, 'jobs': jobs.remote.__module__,\n"
        "  'xgb': XGBEstimator.__module__}))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["version"] == result["real_version"] == "2.6.0"
    assert "snowflake.ml.jobs" in result["overridden"]
    assert "snowflake.ml.data" in result["overridden"]
    assert "snowflake.ml" in result["kept"], "the real client's own package stays"
    assert "snowflake.ml.modeling" in result["kept"]
    assert result["jobs"] == "shoal.compat.snowflake.jobs"
    assert result["xgb"] == "shoal.plugins.xgboost.estimator"
    assert "snowflake-ml-python 2.6.0 is installed; shoal replaces" in done.stderr, "it says what it replaces"


def test_zip_imports_and_entrypoints_resolved_as_the_reference_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shoal.errors import ConfigError
    from shoal.jobs.payload import add_imports, directory_payload

    archive = tmp_path / "helpers.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("helpers/__init__.py", "VALUE = 42\n")
        handle.writestr("helpers/__pycache__/x.cpython-311.pyc", b"junk")
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('hi')\n")
    for entrypoint in ("src/main.py", str(project / "src" / "main.py")):
        assert directory_payload(project, entrypoint, None).entrypoint == "src/main.py"
    monkeypatch.chdir(tmp_path)
    assert directory_payload(project, "project/src/main.py", None).entrypoint == "src/main.py"
    payload = directory_payload(project, "src/main.py", None)
    add_imports(payload, [str(archive)])
    assert payload.blobs == {"helpers/__init__.py": b"VALUE = 42\n"}
    add_imports(payload, [(str(archive), "vendor.libs")])
    assert payload.blobs["vendor/libs/helpers/__init__.py"] == b"VALUE = 42\n"
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as handle:
        handle.writestr("../escape.py", "x = 1\n")
    with pytest.raises(ConfigError, match="points outside the archive"):
        add_imports(payload, [str(evil)])


@pytest.mark.usefixtures("compat")
def test_local_testing_session_sql_names_the_warehouse_instead() -> None:
    from snowflake.snowpark import Session

    session = Session.builder.config("local_testing", True).create()
    with pytest.raises(
        NotSupportedError, match=r"Session\.sql is not supported by shoal.*embedded DuckDB warehouse"
    ):
        session.sql("CREATE STAGE my_stage")
    with pytest.raises(NotImplementedError):  # still what Snowpark raises, for code that catches that
        session.sql("SELECT 1")
    frame = session.create_dataframe([[1, "a"]], schema=["N", "S"])
    assert frame.to_pandas().to_dict("records") == [{"N": 1, "S": "a"}], "everything else is Snowpark's own"


@pytest.mark.usefixtures("compat")
def test_the_reference_tune_module_is_shoal_tune() -> None:
    from snowflake.ml.modeling import tune
    from snowflake.ml.modeling.tune.search import BayesOpt, RandomSearch

    import shoal.tune

    assert tune.Tuner is shoal.tune.Tuner
    assert tune.get_tuner_context is shoal.tune.get_tuner_context
    assert tune.uniform(0.01, 0.1) == shoal.tune.Uniform(0.01, 0.1)
    assert tune.TunerConfig is shoal.tune.TunerConfig
    assert RandomSearch is shoal.tune.RandomSearch
    assert BayesOpt is shoal.tune.BayesOpt

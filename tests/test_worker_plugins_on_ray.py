"""Workers on a real Ray cluster rebuild the driver's plugin manager from its manifest alone,
and refuse to run when their environment lacks a plugin the driver has."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_helpers import forget_module, make_distribution
from shoal.plugin_manager import make_plugin_manager
from shoal.runtime.plugin_bootstrap import describe_worker_plugins

pytestmark = [pytest.mark.slow, pytest.mark.ray]

PLUGIN = """
from shoal import hookimpl
from shoal.contributions import PartitionFunctionSpec

def double(connector, context):
    return [2 * x for x in connector]

@hookimpl
def shoal_partition_functions():
    yield PartitionFunctionSpec(name="double", function=double)
"""


@pytest.fixture(scope="module")
def ray_session() -> Iterator[Any]:
    import ray

    ray.shutdown()  # a connection to a pool left by an earlier module
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _install(tmp_path: Path, version: str) -> Path:
    return make_distribution(
        tmp_path / "site",
        "doubling-plugin",
        version,
        entry_point="doubling",
        module="doubling_plugin",
        source=PLUGIN,
    )


@pytest.fixture(autouse=True)
def _forget_plugin_module() -> Iterator[None]:
    yield
    forget_module("doubling_plugin")


def test_worker_rebuilds_plugins_from_the_manifest(
    ray_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _install(tmp_path, "0.3")
    monkeypatch.syspath_prepend(str(site))
    manifest = make_plugin_manager().manifest()
    task = ray_session.remote(describe_worker_plugins).options(
        runtime_env={"env_vars": {"PYTHONPATH": str(site)}}
    )
    result = ray_session.get(task.remote(manifest), timeout=120)
    assert result["plugins"] == [(r.name, r.distribution, r.version) for r in manifest.plugins]
    assert ("doubling", "doubling-plugin", "0.3") in result["plugins"]
    assert result["contributions"]["partition_functions"] == ["double"]
    assert result["contributions"]["model_serdes"] == ["lightgbm", "pickle", "torch", "xgboost"]


def test_worker_without_the_plugin_refuses_with_a_clear_error(
    ray_session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = _install(tmp_path, "0.4")
    monkeypatch.syspath_prepend(str(site))
    manifest = make_plugin_manager().manifest()
    # The worker's node lacks the distribution: its folder is gone by the time the worker looks.
    shutil.move(str(site), str(tmp_path / "uninstalled"))
    task = ray_session.remote(describe_worker_plugins)
    with pytest.raises(ray_session.exceptions.RayTaskError) as caught:
        ray_session.get(task.remote(manifest), timeout=120)
    message = str(caught.value)
    assert "PluginError" in message
    assert "differ from the driver's" in message
    assert "missing plugin 'doubling' (distribution doubling-plugin 0.4)" in message

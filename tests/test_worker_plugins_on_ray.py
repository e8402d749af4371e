"""Workers on a real Ray cluster rebuild the driver's plugin manager from its manifest alone,
and refuse to run when their environment lacks a plugin the driver has."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plugin_helpers import forget_module, make_distribution
from shoal.plugin_manager import PluginManifest, make_plugin_manager

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

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = make_distribution(
        tmp_path / "site", "doubling-plugin", "0.3", entry_point="doubling", module="doubling_plugin", source=PLUGIN
    )
    monkeypatch.syspath_prepend(str(site))
    yield site
    forget_module("doubling_plugin")


def _worker_side(manifest: PluginManifest) -> dict[str, Any]:
    from shoal import hooks
    from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager

    pm = install_worker_plugin_manager(manifest)
    return {
        "records": [(r.name, r.distribution, r.version) for r in pm.records()],
        "doubled": hooks.get_partition_function("double").function([1, 2], None),
    }


def test_worker_rebuilds_plugins_from_the_manifest(ray_session: Any, third_party: Path) -> None:
    manifest = make_plugin_manager().manifest()
    task = ray_session.remote(_worker_side).options(runtime_env={"env_vars": {"PYTHONPATH": str(third_party)}})
    result = ray_session.get(task.remote(manifest), timeout=120)
    assert result["doubled"] == [2, 4]
    assert result["records"] == [(r.name, r.distribution, r.version) for r in manifest.plugins]
    assert ("doubling", "doubling-plugin", "0.3") in result["records"]


def test_worker_without_the_plugin_refuses_with_a_clear_error(ray_session: Any, third_party: Path) -> None:
    manifest = make_plugin_manager().manifest()
    task = ray_session.remote(_worker_side)
    with pytest.raises(Exception) as caught:  # RayTaskError wrapping the worker's PluginError
        ray_session.get(task.remote(manifest), timeout=120)
    message = str(caught.value)
    assert "PluginError" in message
    assert "differ from the driver's" in message
    assert "missing plugin 'doubling' (distribution doubling-plugin 0.3)" in message

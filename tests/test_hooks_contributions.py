"""One test per contribution hook: a plugin contributes, shoal collects, selects and uses it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO_ROOT
from shoal import hookimpl, hooks
from shoal.contributions import (
    ComputePoolBackendSpec,
    DataSourceSpec,
    EstimatorSpec,
    ModelSerdeSpec,
    PartitionerSpec,
    PartitionFunctionSpec,
)
from shoal.dpf import DPF
from shoal.errors import ConfigError, PluginError
from shoal.plugin_manager import get_plugin_manager
from shoal.serde import ModelSerde
from shoal.testing import temporary_plugin


def test_hook_shoal_estimators() -> None:
    calls: list[dict[str, Any]] = []

    def factory(**options: Any) -> str:
        calls.append(options)
        return "backend"

    class Trainers:
        @hookimpl
        def shoal_estimators(self) -> Iterator[EstimatorSpec]:
            yield EstimatorSpec(name="HistGB", factory=factory, aliases=("hgb",), frameworks=("sklearn",))

    with temporary_plugin(Trainers(), "trainers"):
        specs = hooks.estimators()
        assert sorted(specs) == ["histgb", "lightgbm", "pytorch", "xgboost"]  # with shoal's own three
        assert calls == [], "collecting specs must not call their factories"
        spec = hooks.get_estimator("HGB")
        assert spec.frameworks == ("sklearn",)
        assert spec.factory(max_iter=5) == "backend"
        assert calls == [{"max_iter": 5}]
    with pytest.raises(ConfigError, match="Unknown estimator 'hgb'"):
        hooks.get_estimator("hgb")


def test_hook_shoal_partition_functions() -> None:
    def count_rows(connector: Any, context: Any) -> int:
        return len(connector)

    class Functions:
        @hookimpl
        def shoal_partition_functions(self) -> PartitionFunctionSpec:  # a single spec is accepted
            return PartitionFunctionSpec(name="row-count", function=count_rows)

    with temporary_plugin(Functions(), "functions"):
        assert list(hooks.partition_functions()) == ["row-count"]
        # the public path: DPF resolves the name to the plugin's function (what workers run)
        assert DPF("row-count", "STAGE").func is count_rows
    with pytest.raises(ConfigError, match="partition function"):
        DPF("row-count", "STAGE")  # gone with its plugin


def test_hook_shoal_partitioners() -> None:
    class Buckets:
        def __init__(self, n: int) -> None:
            self.n = n

        def key(self, value: int) -> int:
            return value % self.n

    class Partitioners:
        @hookimpl
        def shoal_partitioners(self) -> list[PartitionerSpec]:
            return [PartitionerSpec(name="mod", factory=Buckets)]

    with temporary_plugin(Partitioners(), "custom-partitioners"):
        partitioner = hooks.get_partitioner("mod").factory(n=4)
        assert [partitioner.key(v) for v in (1, 6, 8)] == [1, 2, 0]


def test_hook_shoal_data_sources() -> None:
    class Sources:
        @hookimpl
        def shoal_data_sources(self) -> Iterator[DataSourceSpec]:
            yield DataSourceSpec(name="ints", accepts=lambda o: isinstance(o, int), factory=lambda o: [o])
            yield DataSourceSpec(name="strs", accepts=lambda o: isinstance(o, str), factory=lambda o: list(o))

    class Greedy:
        @hookimpl
        def shoal_data_sources(self) -> Iterator[DataSourceSpec]:
            yield DataSourceSpec(name="anything", accepts=lambda o: True, factory=lambda o: o)

    with temporary_plugin(Sources(), "sources"):
        assert hooks.data_source_for(7).factory(7) == [7]
        assert hooks.data_source_for("ab").factory("ab") == ["a", "b"]
        with pytest.raises(
            ConfigError, match=r"No data source accepts an object of type builtins.float.*ints, strs"
        ):
            hooks.data_source_for(1.5)
        with (
            temporary_plugin(Greedy(), "greedy"),
            pytest.raises(PluginError, match="Several data sources accept"),
        ):
            hooks.data_source_for(7)


def test_hook_shoal_stage_backends(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The worked example plugin's backend, registered directly, serves sqlite:// stages."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "examples" / "shoal-sqlite-stage"))
    import shoal_sqlite_stage

    import shoal

    with temporary_plugin(shoal_sqlite_stage, "sqlite_stage"):
        assert hooks.stage_backend_for_scheme("SQLITE").name == "sqlite"
        stage = shoal.create_stage("blobs", url=f"sqlite://{tmp_path}/blobs.db")
        stage.write_text("a/b/hello.txt", "hi")
        assert shoal.get_stage("@BLOBS").read_text("a/b/hello.txt") == "hi"
        assert stage.list("", pattern="*.txt") == ["a/b/hello.txt"]

        class Rival:
            @hookimpl
            def shoal_stage_backends(self) -> Any:
                from shoal.contributions import StageBackendSpec

                yield StageBackendSpec(name="rival", schemes=("sqlite",), factory=lambda url: None)

        with temporary_plugin(Rival(), "rival"), pytest.raises(PluginError, match="'sqlite' is served by"):
            hooks.stage_backend_for_scheme("sqlite")
    sys.modules.pop("shoal_sqlite_stage", None)
    with pytest.raises(ConfigError, match=r"No stage backend serves URL scheme 'sqlite://'"):
        hooks.stage_backend_for_scheme("sqlite")


def test_hook_shoal_model_serdes(tmp_path: Path) -> None:
    model = {"weights": [1.0, 2.0], "name": "m"}
    pickle_serde = hooks.get_model_serde("pickle").factory()
    path = str(tmp_path / pickle_serde.filename)
    pickle_serde.write(model, path)
    assert pickle_serde.filename == "model.pkl"
    assert pickle_serde.read(path) == model

    import torch

    torch_serde = hooks.get_model_serde("torch").factory()
    layer = torch.nn.Linear(3, 1)
    torch_path = str(tmp_path / torch_serde.filename)
    torch_serde.write(layer.state_dict(), torch_path)
    restored = torch_serde.read(torch_path)
    assert torch.equal(restored["weight"], layer.state_dict()["weight"])

    class UpperSerde(ModelSerde):
        @property
        def filename(self) -> str:
            return "model.txt"

        def write(self, model: Any, file_path: str) -> None:
            Path(file_path).write_text(str(model).upper())

        def read(self, file_path: str) -> Any:
            return Path(file_path).read_text()

    class Serdes:
        @hookimpl
        def shoal_model_serdes(self) -> Iterator[ModelSerdeSpec]:
            yield ModelSerdeSpec(name="upper", factory=UpperSerde)

    with temporary_plugin(Serdes(), "serdes-extra"):
        serde = hooks.get_model_serde("upper").factory()
        serde.write("abc", str(tmp_path / serde.filename))
        assert serde.read(str(tmp_path / "model.txt")) == "ABC"


def test_hook_shoal_compute_pool_backends() -> None:
    class Pools:
        @hookimpl
        def shoal_compute_pool_backends(self) -> Iterator[ComputePoolBackendSpec]:
            yield ComputePoolBackendSpec(name="slurm", factory=lambda record: ("slurm", record))

    with temporary_plugin(Pools(), "pools"):
        assert "slurm" in hooks.compute_pool_backends()
        assert hooks.get_compute_pool_backend("SLURM").factory({"name": "p"}) == ("slurm", {"name": "p"})


def test_a_failing_contribution_hook_names_its_plugin() -> None:
    class Crashes:
        @hookimpl
        def shoal_estimators(self) -> list[EstimatorSpec]:
            raise RuntimeError("boom")

    with (
        temporary_plugin(Crashes(), "crashes"),
        pytest.raises(
            PluginError, match=r"Plugin 'crashes'.*failed in shoal_estimators\(\): RuntimeError: boom"
        ),
    ):
        hooks.estimators()
    assert get_plugin_manager().get_plugin("crashes") is None

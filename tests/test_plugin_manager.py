"""The plugin manager: built-ins, entry-point discovery, blocking, errors, manifests."""

from __future__ import annotations

import pickle
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from plugin_helpers import forget_module, make_distribution
from shoal import hookimpl, hooks
from shoal.contributions import EstimatorSpec, ModelSerdeSpec
from shoal.errors import ConfigError, PluginError
from shoal.plugin_manager import (
    BUILTIN_PLUGINS,
    PluginManifest,
    PluginRecord,
    get_plugin_manager,
    make_plugin_manager,
    register_plugin,
    set_plugin_manager,
)
from shoal.runtime.plugin_bootstrap import build_worker_plugin_manager

ESTIMATOR_PLUGIN = """
from shoal import hookimpl
from shoal.contributions import EstimatorSpec

def make(**options):
    return ("{tag}", options)

@hookimpl
def shoal_estimators():
    yield EstimatorSpec(name="{estimator}", factory=make, description="from {tag}")
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path where tests install tiny distributions."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for path in folder.glob("*.py"):
        forget_module(path.stem)


def builtin_names() -> list[str]:
    return [m.rsplit(".", 1)[-1] for m in BUILTIN_PLUGINS]


#: shoal's own plugins that register through the entry-point group, as a third party's do
SHIPPED_ENTRY_POINTS = ["xgboost", "lightgbm", "torch"]


def test_builtins_are_registered_like_any_plugin() -> None:
    pm = make_plugin_manager(autoload=False)
    records = {r.name: r for r in pm.records()}
    assert list(records) == builtin_names()
    for module_name in BUILTIN_PLUGINS:
        record = records[module_name.rsplit(".", 1)[-1]]
        assert record.source == "builtin"
        assert record.distribution == "shoal"
        assert record.target == module_name
        assert pm.hooks_of(record.name), f"{record.name} implements no hook"


def test_entry_point_plugin_is_discovered_and_used(site: Path) -> None:
    make_distribution(
        site,
        "acme-trainers",
        "1.2.3",
        entry_point="acme",
        module="acme_trainers",
        source=ESTIMATOR_PLUGIN.format(tag="acme", estimator="acme-gbm"),
    )
    pm = make_plugin_manager()
    set_plugin_manager(pm)
    record = pm.record("acme")
    assert record == PluginRecord("acme", "acme-trainers", "1.2.3", "entrypoint", "acme_trainers")
    spec = hooks.get_estimator("ACME-GBM")
    assert spec.factory(depth=3) == ("acme", {"depth": 3})


def test_disable_autoload_skips_entry_points_but_keeps_builtins(
    site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_distribution(
        site,
        "acme-trainers",
        "1.0",
        entry_point="acme",
        module="acme_trainers",
        source=ESTIMATOR_PLUGIN.format(tag="acme", estimator="acme-gbm"),
    )
    monkeypatch.setenv("SHOAL_DISABLE_PLUGIN_AUTOLOAD", "1")
    pm = get_plugin_manager()
    assert [r.name for r in pm.records()] == builtin_names()
    with pytest.raises(ConfigError, match="Unknown estimator 'acme-gbm'"):
        hooks.get_estimator("acme-gbm")


def test_block_list_by_name_from_env_and_argument(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(
        site,
        "acme-trainers",
        "1.0",
        entry_point="acme",
        module="acme_trainers",
        source=ESTIMATOR_PLUGIN.format(tag="acme", estimator="acme-gbm"),
    )
    monkeypatch.setenv("SHOAL_BLOCKED_PLUGINS", "acme, serdes")
    names = [r.name for r in make_plugin_manager().records()]
    assert "acme" not in names
    assert "serdes" not in names
    assert "local_stage" in names
    monkeypatch.delenv("SHOAL_BLOCKED_PLUGINS")
    names = [r.name for r in make_plugin_manager(blocked=["local_stage"]).records()]
    assert "local_stage" not in names
    assert "acme" in names


def test_import_failure_names_plugin_and_distribution(site: Path) -> None:
    make_distribution(
        site,
        "broken-dist",
        "0.4",
        entry_point="broken",
        module="broken_plugin",
        source="import does_not_exist_anywhere\n",
    )
    with pytest.raises(PluginError) as caught:
        make_plugin_manager()
    message = str(caught.value)
    assert "'broken' (distribution broken-dist 0.4) failed to import" in message
    assert "does_not_exist_anywhere" in message
    assert "SHOAL_BLOCKED_PLUGINS=broken" in message
    assert isinstance(caught.value.__cause__, ModuleNotFoundError)


def test_same_contribution_from_two_distributions_is_an_error(site: Path) -> None:
    make_distribution(
        site,
        "first-dist",
        "1.0",
        entry_point="first",
        module="first_plugin",
        source=ESTIMATOR_PLUGIN.format(tag="first", estimator="gbm"),
    )
    make_distribution(
        site,
        "second-dist",
        "2.0",
        entry_point="second",
        module="second_plugin",
        source=ESTIMATOR_PLUGIN.format(tag="second", estimator="gbm"),
    )
    set_plugin_manager(make_plugin_manager())
    with pytest.raises(PluginError) as caught:
        hooks.estimators()
    message = str(caught.value)
    assert "Conflicting plugins found for `estimators`" in message
    assert "'gbm' provided by:" in message
    assert "first-dist 1.0" in message
    assert "second-dist 2.0" in message


def test_two_distributions_with_the_same_plugin_name(site: Path, tmp_path: Path) -> None:
    make_distribution(
        site,
        "first-dist",
        "1.0",
        entry_point="dup",
        module="first_plugin",
        source=ESTIMATOR_PLUGIN.format(tag="first", estimator="one"),
    )
    make_distribution(
        site,
        "second-dist",
        "2.0",
        entry_point="dup",
        module="second_plugin",
        source=ESTIMATOR_PLUGIN.format(tag="second", estimator="two"),
    )
    with pytest.raises(
        PluginError,
        match=r"Two plugins are named 'dup'.*first-dist 1.0.*second-dist 2.0|"
        r"Two plugins are named 'dup'.*second-dist 2.0.*first-dist 1.0",
    ):
        make_plugin_manager()


def test_misspelled_hook_is_an_error_with_a_suggestion() -> None:
    class Typo:
        @hookimpl
        def shoal_estimater(self) -> list[EstimatorSpec]:
            return []

    with pytest.raises(PluginError) as caught:
        register_plugin(Typo(), "typo")
    message = str(caught.value)
    assert "unknown hook 'shoal_estimater'" in message
    assert "Did you mean 'shoal_estimators'?" in message
    assert get_plugin_manager().get_plugin("typo") is None, "a rejected plugin must not stay registered"


def test_undecorated_hook_function_is_an_error() -> None:
    class Forgot:
        def shoal_estimators(self) -> list[EstimatorSpec]:
            return []

    with pytest.raises(PluginError, match=r"defines shoal_estimators\(\) without @hookimpl"):
        register_plugin(Forgot(), "forgot")


def test_hookimpl_with_unknown_argument_is_an_error() -> None:
    class BadArgs:
        @hookimpl
        def shoal_before_job(self, job: object, cluster: object) -> None:
            return None

    with pytest.raises(
        PluginError, match=r"(?s)'badargs'.*is invalid.*\{'cluster'\} are declared in the hookimpl"
    ):
        register_plugin(BadArgs(), "badargs")


def test_registering_a_class_instead_of_an_instance_is_explained() -> None:
    class Plugin:
        @hookimpl
        def shoal_estimators(self) -> list[EstimatorSpec]:
            return []

    with pytest.raises(PluginError, match=r"register an instance: .*Plugin\(\)"):
        register_plugin(Plugin)


def test_selection_by_name_lists_the_choices() -> None:
    with pytest.raises(ConfigError) as caught:
        hooks.get_model_serde("pickel")
    assert (
        str(caught.value) == "Unknown model serde 'pickel'. Did you mean 'pickle'? "
        "Choose one of: lightgbm, pickle, torch, xgboost."
    )


def test_wrong_return_type_names_the_plugin() -> None:
    class Wrong:
        @hookimpl
        def shoal_model_serdes(self) -> list[object]:
            return [{"name": "dict-serde"}]

    register_plugin(Wrong(), "wrong")
    with pytest.raises(PluginError, match=r"'wrong'.*returned dict.*expected ModelSerdeSpec"):
        hooks.model_serdes()


def test_manifest_is_small_picklable_and_rebuilds_the_same_plugins() -> None:
    pm = get_plugin_manager()
    manifest = pm.manifest()
    clone = pickle.loads(pickle.dumps(manifest))
    assert clone == manifest
    rebuilt = build_worker_plugin_manager(clone)
    assert rebuilt.records() == pm.records()
    assert sorted(hooks.collect("model_serdes", rebuilt)) == ["lightgbm", "pickle", "torch", "xgboost"]


def test_worker_rebuild_reports_every_difference() -> None:
    manifest = get_plugin_manager().manifest()
    tampered = PluginManifest(
        plugins=(
            *[
                PluginRecord(r.name, r.distribution, "9.9.9", r.source, r.target) if r.name == "serdes" else r
                for r in manifest.plugins
            ],
            PluginRecord("ghost", "ghost-dist", "1.0", "entrypoint", "ghost_module"),
        ),
        blocked=manifest.blocked,
    )
    with pytest.raises(PluginError) as caught:
        build_worker_plugin_manager(tampered)
    message = str(caught.value)
    assert "differ from the driver's" in message
    assert f"this node has shoal {version('shoal')}, the driver has 9.9.9" in message
    assert "missing plugin 'ghost' (distribution ghost-dist 1.0)" in message


def test_worker_rebuild_in_a_fresh_process(site: Path, tmp_path: Path) -> None:
    """A second process (as a worker is) rebuilds a third-party plugin from the manifest alone."""
    make_distribution(
        site,
        "acme-trainers",
        "1.2.3",
        entry_point="acme",
        module="acme_trainers",
        source=ESTIMATOR_PLUGIN.format(tag="acme", estimator="acme-gbm"),
    )
    manifest_file = tmp_path / "manifest.pkl"
    manifest_file.write_bytes(pickle.dumps(make_plugin_manager().manifest()))
    script = (
        "import pickle, sys\n"
        "from shoal.runtime.plugin_bootstrap import install_worker_plugin_manager\n"
        "from shoal import hooks\n"
        f"pm = install_worker_plugin_manager(pickle.loads(open({str(manifest_file)!r}, 'rb').read()))\n"
        "print(sorted(r.name for r in pm.records()), hooks.get_estimator('acme-gbm').description)\n"
    )
    env_path = f"{site}"
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin"},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{sorted(['acme', *builtin_names(), *SHIPPED_ENTRY_POINTS])} from acme"


def test_contribution_specs_validate_themselves() -> None:
    with pytest.raises(PluginError, match="invalid name '9lives'"):
        EstimatorSpec(name="9lives", factory=dict)
    with pytest.raises(PluginError, match="factory must be callable"):
        ModelSerdeSpec(name="x", factory="not callable")  # type: ignore[arg-type]
    with pytest.raises(PluginError, match="alias must not repeat the name"):
        EstimatorSpec(name="xgb", factory=dict, aliases=("XGB",))
    spec = EstimatorSpec(name="XGBoost", factory=dict, aliases=("XGB",))
    assert spec.names == ("xgboost", "xgb")
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]

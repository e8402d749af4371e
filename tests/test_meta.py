"""Meta-tests that keep the plugin API honest: every hook documented, tested, and reached only
through the typed façade; the namespace slices intact; importing shoal stays light."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO_ROOT
from shoal import hookspecs

HOOKS = sorted(name for name, obj in vars(hookspecs).items() if name.startswith("shoal_") and callable(obj))


def test_there_are_hooks_of_every_promised_family() -> None:
    for expected in (
        "shoal_estimators",
        "shoal_partition_functions",
        "shoal_partitioners",
        "shoal_data_sources",
        "shoal_stage_backends",
        "shoal_model_serdes",
        "shoal_compute_pool_backends",
    ):
        assert expected in HOOKS
    for scope in ("job", "run", "partition"):
        assert {f"shoal_before_{scope}", f"shoal_after_{scope}", f"shoal_on_{scope}_error"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_spec_docstring_says_where_what_and_shows_an_example(hook: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    for section in ("**Where:**", "**Results:**", "**Example:**", "@hookimpl", f"def {hook}("):
        assert section in doc, f"{hook} docstring lacks {section!r}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_its_signature(hook: str) -> None:
    docs = (REPO_ROOT / "docs" / "plugins.md").read_text()
    params = ", ".join(inspect.signature(getattr(hookspecs, hook)).parameters)
    assert f"{hook}({params})" in docs, f"docs/plugins.md must show `{hook}({params})`"


def _test_function_names() -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / "tests").glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                names.add(node.name)
    return names


#: Where each lifecycle hook is implemented by an installed plugin and fired by a real job or run.
LIFECYCLE_TESTS = {
    "job": "test_pools.py",
    "run": "test_hooks_on_runs.py",
    "partition": "test_hooks_on_runs.py",
}


def _lifecycle_kind(hook: str) -> str | None:
    for kind in LIFECYCLE_TESTS:
        if hook.endswith(f"_{kind}") or hook.endswith(f"_{kind}_error"):
            return kind
    return None


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook: str) -> None:
    kind = _lifecycle_kind(hook)
    if kind is None:  # a contribution hook: its test calls it through the public path
        assert f"test_hook_{hook}" in _test_function_names(), f"write a test named test_hook_{hook}"
        return
    module = Path(__file__).parent / LIFECYCLE_TESTS[kind]
    text = module.read_text()
    assert f"def {hook}(" in text, f"{module.name} must implement {hook} in a plugin it installs"
    assert "pytest.mark.ray" in text, f"{module.name} must fire {hook} on a real pool"


def test_only_the_hooks_module_calls_pm_hook() -> None:
    offenders = []
    for folder in ("core", "plugins", "runtime"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path.name == "hooks.py" and path.parent.name == "shoal":
                continue
            if re.search(r"\.hook\.shoal_|pm\.hook\b", path.read_text()):
                offenders.append(str(path.relative_to(REPO_ROOT)))
    assert offenders == [], f"call hooks through shoal.hooks, not pm.hook: {offenders}"


def test_namespace_slices_have_no_stray_init_files() -> None:
    assert (REPO_ROOT / "core" / "shoal" / "__init__.py").is_file()
    assert not (REPO_ROOT / "plugins" / "shoal" / "__init__.py").exists()
    assert not (REPO_ROOT / "runtime" / "shoal" / "__init__.py").exists()
    for slice_dir in ("core/shoal", "plugins/shoal/plugins", "runtime/shoal/runtime"):
        assert (REPO_ROOT / slice_dir / "py.typed").is_file(), f"{slice_dir} needs py.typed"


def test_importing_shoal_and_listing_plugins_imports_no_framework() -> None:
    script = (
        "import sys, json\n"
        "import shoal, shoal.train, shoal.data\n"
        "import shoal.plugins.xgboost, shoal.plugins.lightgbm, shoal.plugins.torch\n"
        "from shoal.cli.plugins_cmd import plugin_table\n"
        "from shoal import hooks\n"
        "aliases = [hooks.get_estimator(a).name for a in ('xgb', 'lgbm', 'torch')]\n"
        "estimators = sorted(hooks.estimators()) + aliases\n"
        "rows = plugin_table()\n"
        "heavy = ('ray', 'torch', 'xgboost', 'lightgbm', 'snowflake.snowpark', 'duckdb', 'pandas')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "names = [r['name'] for r in rows]\n"
        "print(json.dumps({'heavy': heavy, 'plugins': names, 'estimators': estimators}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["heavy"] == []
    assert "serdes" in result["plugins"]
    assert {"xgboost", "lightgbm", "torch"} <= set(result["plugins"])
    assert result["estimators"][-3:] == ["xgboost", "lightgbm", "pytorch"]  # found by their aliases
    assert {"xgboost", "lightgbm", "pytorch"} <= set(result["estimators"])


RAY_FREE = ("shoal/train/", "shoal/dpf/engine/")  # control logic: Ray only behind their seams
SAYS_WHERE_RAY_RUNS = re.compile(r"\bRay\b|\bworkers?\b|inside a job|job payloads?|job's payload")


def ray_imports(path: Path) -> list[int]:
    """Lines of ``path`` that import ``ray`` or one of its modules (docstrings do not count)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        if any(name == "ray" or name.startswith("ray.") for name in names):
            lines.append(node.lineno)
    return lines


def test_core_imports_ray_only_where_its_docstring_says_it_runs_with_ray() -> None:
    core = REPO_ROOT / "core"
    found = {path: ray_imports(path) for path in sorted(core.rglob("*.py"))}
    importing = {path.relative_to(core).as_posix(): lines for path, lines in found.items() if lines}
    assert importing, "the scan found no import of ray at all: it is broken"
    forbidden = {name: lines for name, lines in importing.items() if name.startswith(RAY_FREE)}
    assert not forbidden, f"shoal.train and shoal.dpf.engine must not import ray (see runtime/): {forbidden}"
    unexplained = {
        name: lines
        for name, lines in importing.items()
        if not SAYS_WHERE_RAY_RUNS.search(ast.get_docstring(ast.parse((core / name).read_text())) or "")
    }
    assert not unexplained, (
        f"these core modules import ray but their docstring does not say they run on workers, "
        f"inside a job or with Ray: {unexplained}"
    )


def _shoal_imports(path: Path) -> Iterator[tuple[str, list[str]]]:
    """``(module, names)`` of every import of a shoal module in ``path`` (``import x``: no names)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shoal"):
            names = [alias.name for alias in node.names]
            if node.module == "shoal":  # from shoal import runtime / plugins / localfiles
                yield from ((f"shoal.{name}", []) for name in names)
            else:
                yield node.module, names
        elif isinstance(node, ast.Import):
            yield from ((alias.name, []) for alias in node.names if alias.name.startswith("shoal"))


def test_core_reaches_runtime_only_through_the_executors_module_and_imports_no_plugin() -> None:
    """The import direction (docs/architecture.md): runtime and plugins build on core; core reaches
    runtime at one composition point, ``shoal.executors``, and names plugins only as data."""
    composition_point = REPO_ROOT / "core" / "shoal" / "executors.py"
    wrong = sorted(
        f"{path.relative_to(REPO_ROOT)}: {module}"
        for path in (REPO_ROOT / "core" / "shoal").rglob("*.py")
        for module, _ in _shoal_imports(path)
        if module.startswith("shoal.plugins")
        or (module.startswith("shoal.runtime") and path != composition_point)
    )
    assert wrong == [], "core imports runtime (outside shoal/executors.py) or a plugin:\n" + "\n".join(wrong)


def test_runtime_imports_only_public_names_of_core() -> None:
    wrong = sorted(
        f"{path.relative_to(REPO_ROOT)}: from {module} import {name}"
        for path in (REPO_ROOT / "runtime").rglob("*.py")
        for module, names in _shoal_imports(path)
        if not module.startswith("shoal.runtime")
        for name in [*names, *module.split(".")]
        if name.startswith("_") and not name.startswith("__")
    )
    assert wrong == [], "runtime uses private names of core:\n" + "\n".join(wrong)

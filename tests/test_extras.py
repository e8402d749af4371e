"""A framework that is not installed: the plugin stays listed, says which extra it needs, and
using it fails with the ``pip install`` to run before anything is submitted or started.

The framework is hidden from a fresh interpreter by a meta path finder that refuses it, as if it
were not installed (this venv has every extra).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pool_helpers import run_python
from shoal.errors import ConfigError, MissingExtraError
from shoal.extras import install_hint, is_installed, missing, require

HIDE = '''
import sys

class Hidden:
    """Refuses these modules, as if they were not installed."""

    names = {names!r}

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Hidden())
'''


def hidden(*names: str) -> str:
    return HIDE.format(names=set(names))


def test_a_missing_module_is_found_missing_and_its_extra_is_named() -> None:
    assert is_installed("json")
    assert not is_installed("no_such_module_for_shoal")
    assert not is_installed("no_such_parent.child")
    assert missing(["json", "no_such_module_for_shoal"]) == ["no_such_module_for_shoal"]
    assert install_hint("xgboost") == "pip install 'shoal[xgboost]'"
    assert install_hint("snowflake.snowpark") == "pip install 'shoal[snowpark]'"
    assert install_hint("sklearn") == "install the package that provides the 'sklearn' module"
    with pytest.raises(MissingExtraError, match=r"the 'x' estimator needs no_such_module_for_shoal") as info:
        require(["json", "no_such_module_for_shoal"], "the 'x' estimator")
    assert isinstance(info.value, ImportError), "callers catching ImportError see it"
    assert not isinstance(info.value, ConfigError)


def error_without(module: str, setup: str, call: str, home: Path) -> tuple[str, str]:
    """Run ``setup`` then ``call`` in a fresh interpreter where ``module`` is hidden: the
    MissingExtraError's message and what SHOAL_HOME holds afterwards."""
    code = hidden(module) + (
        "import os\n"
        "from shoal.errors import MissingExtraError\n"
        f"{setup}\n"
        "try:\n"
        f"    {call}\n"
        "except MissingExtraError as error:\n"
        "    print('ERROR', error)\n"
        "print('HOME', sorted(os.listdir(os.environ['SHOAL_HOME'])))\n"
    )
    home.mkdir()
    out = run_python(code, home, timeout=120)
    return out.split("ERROR ", 1)[1].splitlines()[0], out.split("HOME ", 1)[1].strip()


def test_fitting_without_xgboost_names_the_extra_and_starts_nothing(tmp_path: Path) -> None:
    pd.DataFrame({"F": [1.0, 2.0, 3.0], "Y": [0.0, 1.0, 0.0]}).to_parquet(tmp_path / "rows.parquet")
    setup = (
        "import pandas as pd\n"
        "from shoal.plugins.xgboost import XGBEstimator\n"
        f"frame = pd.read_parquet({str(tmp_path / 'rows.parquet')!r})"
    )
    call = "XGBEstimator(n_estimators=2).fit(frame, label_col='Y')"
    error, home = error_without("xgboost", setup, call, tmp_path / "home")
    assert error.startswith("the 'xgboost' estimator needs xgboost, which is not installed"), error
    assert error.endswith("run: pip install 'shoal[xgboost]'"), error
    assert home == "[]", "no pool, stage or job was written"


def test_pytorch_distributor_without_torch_names_the_extra_and_writes_nothing(tmp_path: Path) -> None:
    setup = "from shoal.plugins.torch import PyTorchDistributor, PyTorchScalingConfig"
    call = "PyTorchDistributor(print, PyTorchScalingConfig(num_nodes=1)).run()"
    error, home = error_without("torch", setup, call, tmp_path / "home")
    assert error.startswith("the 'pytorch' estimator needs torch, which is not installed"), error
    assert error.endswith("run: pip install 'shoal[torch]'"), error
    assert home == "[]", "no stage, pool or job was written"


def test_plugins_list_shows_the_extra_a_plugin_needs() -> None:
    code = hidden("xgboost", "lightgbm") + (
        "from click.testing import CliRunner\n"
        "from shoal.cli import cli\n"
        "result = CliRunner().invoke(cli, ['plugins', 'list', '--json'])\n"
        "print(result.output)\n"
    )
    out = run_python(code, Path("/tmp"), timeout=120)
    rows = {row["name"]: row for row in json.loads(out[out.index("[") :])}
    xgboost_rows = [row for row in rows.values() if "xgboost" in row["contributes"].get("estimators", [])]
    assert len(xgboost_rows) == 1
    assert xgboost_rows[0]["needs"] == ["shoal[xgboost]"], "still listed, with the extra it needs"
    lightgbm_rows = [row for row in rows.values() if "lightgbm" in row["contributes"].get("estimators", [])]
    assert lightgbm_rows[0]["needs"] == ["shoal[lightgbm]"]
    torch_rows = [row for row in rows.values() if "pytorch" in row["contributes"].get("estimators", [])]
    assert torch_rows[0]["needs"] == [], "torch is installed here"


def test_the_plugins_table_prints_the_extra_as_text() -> None:
    code = hidden("xgboost") + (
        "from click.testing import CliRunner\n"
        "from shoal.cli import cli\n"
        "print(CliRunner(env={'COLUMNS': '400'}).invoke(cli, ['plugins', 'list']).output)\n"
    )
    out = run_python(code, Path("/tmp"), timeout=120)
    assert "estimators: xgboost (needs shoal[xgboost])" in out, out


def test_a_pool_with_the_dashboard_without_ray_default_names_the_extra_and_writes_nothing(
    tmp_path: Path,
) -> None:
    setup = "import shoal"
    call = "shoal.create_compute_pool('DASH', max_nodes=1, include_dashboard=True)"
    error, home = error_without("aiohttp", setup, call, tmp_path / "home")
    assert error.startswith(
        "a pool with Ray's dashboard (include_dashboard=True) needs aiohttp, which is not installed"
    ), error
    assert error.endswith("run: pip install 'shoal[dashboard]'"), error
    assert home == "[]", "no pool record and no Ray process"


@pytest.mark.parametrize(
    ("setup", "call", "what"),
    [
        ("import shoal.compat.snowflake as compat", "compat.install()", "the Snowflake compatibility layer"),
        (
            "from shoal.data.snowpark_service import embedded_session",
            "embedded_session()",
            "a Snowpark session of the workspace's service",
        ),
    ],
)
def test_snowpark_uses_without_snowpark_name_the_extra_and_start_nothing(
    setup: str, call: str, what: str, tmp_path: Path
) -> None:
    error, home = error_without("snowflake", setup, call, tmp_path / "home")
    assert error.startswith(f"{what} needs snowflake.snowpark"), error
    assert error.endswith("run: pip install 'shoal[snowpark]'"), error
    assert home == "[]", "no Snowpark service was started"


def test_bayes_opt_without_optuna_names_the_extra_and_writes_nothing(tmp_path: Path) -> None:
    setup = "from shoal import tune"
    call = (
        "tune.Tuner(print, {'x': tune.uniform(0, 1)}, tune.TunerConfig('loss', 'min', "
        "tune.BayesOpt(), num_trials=2)).run()"
    )
    error, home = error_without("optuna", setup, call, tmp_path / "home")
    assert error.startswith("the tuner's BayesOpt needs optuna, which is not installed"), error
    assert error.endswith("run: pip install 'shoal[tune]'"), error
    assert home == "[]", "no stage, pool or job was written"

"""The ``shoal`` command line: plugins and stage commands, help everywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from shoal.cli import cli


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    context = click.Context(group)
    for name in group.list_commands(context):  # the top group loads its sub-commands by name
        command = group.get_command(context, name)
        assert command is not None, name
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("command", _all_commands(cli), ids=lambda c: " ".join(c) or "shoal")
def test_help_everywhere(command: tuple[str, ...]) -> None:
    code, output = run(*command, "--help")
    assert code == 0
    assert "Usage: " in output


def test_plugins_list_json_shows_builtins_and_their_hooks() -> None:
    code, output = run("plugins", "list", "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(output)}
    assert {"local_stage", "fsspec_stage", "serdes"} <= set(rows)
    assert rows["serdes"]["hooks"] == ["shoal_model_serdes"]
    assert rows["serdes"]["contributes"] == {"model_serdes": ["pickle", "torch", "xgboost", "lightgbm"]}
    assert rows["local_stage"]["hooks"] == ["shoal_stage_backends"]
    assert all(row["distribution"] == "shoal" for row in rows.values())
    estimators = {name: row for name, row in rows.items() if row["hooks"] == ["shoal_estimators"]}
    assert sorted(estimators) == ["lightgbm", "torch", "xgboost"]
    assert {row["source"] for row in estimators.values()} == {"entrypoint"}, "registered as a third party's"
    assert rows["xgboost"]["contributes"] == {"estimators": ["xgboost"]}
    assert {row["source"] for name, row in rows.items() if name not in estimators} == {"builtin"}


def test_plugins_list_table() -> None:
    code, output = run("plugins", "list")
    assert code == 0
    assert "serdes" in output
    assert "local_stage" in output


def test_stage_commands_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "nested").mkdir(parents=True)
    (source / "a.csv").write_text("x\n1\n")
    (source / "nested" / "b.csv").write_text("x\n2\n")

    assert run("stage", "create", "Data")[0] == 0
    code, output = run("stage", "ls")
    assert code == 0
    header, row = output.splitlines()
    assert header.split() == ["name", "url", "managed"]
    assert row.split() == ["DATA", f"file://{tmp_path}/home/stages/DATA", "True"], "piped: nothing cut"
    code, output = run("stage", "ls", "--format", "json")
    assert json.loads(output) == [
        {"name": "DATA", "url": f"file://{tmp_path}/home/stages/DATA", "managed": True}
    ]
    code, output = run("stage", "put", str(source), "@data/in")
    assert code == 0
    assert sorted(output.split()) == ["@DATA/in/a.csv", "@DATA/in/nested/b.csv"]
    code, output = run("stage", "ls", "@db.sch.DATA/in", "--pattern", "b.*", "--json")
    assert json.loads(output) == ["in/nested/b.csv"]
    code, output = run("stage", "get", "@data/in/nested", str(tmp_path / "out"))
    assert code == 0
    assert (tmp_path / "out" / "b.csv").read_text() == "x\n2\n"
    code, output = run("stage", "rm", "@data/in/a.csv")
    assert output.strip() == "removed 1 file(s)"
    assert json.loads(run("stage", "ls", "@data", "--json")[1]) == ["in/nested/b.csv"]
    assert run("stage", "drop", "data")[0] == 0
    assert run("stage", "ls")[1] == ""


def test_cli_errors_are_one_clear_line(tmp_path: Path) -> None:
    env = {**os.environ, "SHOAL_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [sys.executable, "-m", "shoal", "stage", "ls", "@nowhere/x"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("Error: ")
    assert "NOWHERE" in done.stderr
    assert "shoal stage create" in done.stderr


def test_installed_console_script_lists_plugins(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("shoal")
    assert script.exists(), "the shoal console script is installed with the package"
    env = {**os.environ, "SHOAL_HOME": str(tmp_path / "home")}
    done = subprocess.run(
        [str(script), "plugins", "list", "--json"], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "serdes" in {row["name"] for row in json.loads(done.stdout)}


def test_status_shows_the_pools_and_the_snowpark_service(tmp_path: Path) -> None:
    import shoal

    shoal.create_compute_pool("IDLE", max_nodes=1, initially_suspended=True)
    code, output = run("status", "--json")
    assert code == 0
    rows = json.loads(output)
    assert [(r["what"], r["name"], r["state"]) for r in rows] == [
        ("compute pool", "IDLE", "SUSPENDED"),
        ("snowpark service", "SNOWPARK", "STOPPED"),
    ]
    table = run("status")[1].splitlines()
    assert table[0].split() == ["what", "name", "state", "detail"]
    described = run("pool", "describe", "IDLE")[1].splitlines()
    assert described[0].split() == ["field", "value"]
    assert ["name", "IDLE"] in [line.split() for line in described]
    assert ["max_nodes", "1"] in [line.split() for line in described], "values that are not text as JSON"
    stopped = CliRunner().invoke(cli, ["snowpark", "stop"])
    assert (stopped.exit_code, stopped.stdout, stopped.stderr.strip()) == (
        0,
        "",
        "the Snowpark service was not running",
    )

"""Mistakes at the command line: one line on stderr saying what was wrong, exit code 2 for usage
errors and 1 for failures, never a traceback. Each case runs the real ``shoal`` script in a
fresh workspace (no pool is started)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = "print('hello')\n"


def dpf_run(*source: str, run_id: str = "r") -> list[str]:
    """``shoal dpf run fns:f SOURCE... --stage-name S --run-id RUN_ID``."""
    return ["dpf", "run", "fns:f", *source, "--stage-name", "S", "--run-id", run_id]


CASES = [
    # (id, arguments, exit code, fragment of the one line)
    (
        "unknown-pool",
        ["job", "submit", "{script}", "--pool", "NOPE"],
        1,
        "Compute pool 'NOPE' does not exist",
    ),
    (
        "env-without-equals",
        ["job", "submit", "{script}", "--pool", "P", "--env", "NOEQ"],
        2,
        "'NOEQ' is not KEY=VALUE",
    ),
    (
        "instances-not-a-number",
        ["job", "submit", "{script}", "--pool", "P", "--instances", "x"],
        2,
        "--instances",
    ),
    (
        "submit-no-such-path",
        ["job", "submit", "no/such/file.py", "--pool", "P"],
        2,
        "'no/such/file.py' is not a file, a folder or a stage path (@STAGE/path)",
    ),
    (
        "submit-stage-folder-without-entrypoint",
        ["job", "submit", "@CODE/project", "--pool", "P"],
        2,
        "submitting a folder on a stage needs --entrypoint FILE.py",
    ),
    (
        "submit-from-unknown-stage",
        ["job", "submit", "@NOSUCH/project", "--entrypoint", "main.py", "--pool", "P"],
        1,
        "Stage 'NOSUCH' does not exist",
    ),
    ("missing-option", ["dpf", "status", "some_run"], 2, "Missing option '--stage-name'"),
    ("unknown-run", ["dpf", "status", "no_such_run", "--stage-name", "S"], 1, "does not exist"),
    ("unknown-stage", ["stage", "ls", "@nosuch"], 1, "Stage 'NOSUCH' does not exist"),
    ("stage-path-dotdot", ["stage", "ls", "@a/../b"], 1, "may not leave"),
    ("bad-stage-name", ["stage", "create", "bad;name"], 2, "is not an identifier"),
    ("unknown-job-logs", ["job", "logs", "nosuchjob"], 1, "No job 'nosuchjob'"),
    ("unknown-job-status", ["job", "status", "nosuchjob"], 1, "No job 'nosuchjob'"),
    ("missing-argument", ["job", "status"], 2, "Missing argument 'JOB_ID'"),
    ("gc-negative-age", ["stage", "gc", "--older-than", "-1"], 2, "--older-than"),
    ("unknown-command", ["jobs"], 2, "No such command 'jobs'"),
    (
        "instances-zero",
        ["job", "submit", "{script}", "--pool", "P", "--instances", "0"],
        2,
        "0 is not in the range",
    ),
    (
        "env-empty-key",
        ["job", "submit", "{script}", "--pool", "P", "--env", "=s3cr3t"],
        2,
        "an item has an empty KEY",
    ),
    (
        "pool-option-without-equals",
        ["pool", "create", "P", "--max-nodes", "1", "-o", "cpus"],
        2,
        "'cpus' is not KEY",
    ),
    (
        "dpf-bad-run-id",
        dpf_run("--sql", "SELECT 1 AS K", "--partition-by", "K", run_id="a/b"),
        2,
        "run_id 'a/b' contains a path separator",
    ),
    (
        "dpf-missing-table",
        dpf_run("--table", "nosuch", "--partition-by", "K"),
        2,
        "Table with name nosuch does not exist",
    ),
    (
        "dpf-module-not-importable",
        [
            "dpf",
            "run",
            "nomod:f",
            "--sql",
            "SELECT 1 AS K",
            "--partition-by",
            "K",
            "--stage-name",
            "S",
            "--run-id",
            "r",
        ],
        2,
        "cannot import 'nomod' (No module named 'nomod')",
    ),
    (
        "dpf-no-such-function",
        [
            "dpf",
            "run",
            "fns:nope",
            "--sql",
            "SELECT 1 AS K",
            "--partition-by",
            "K",
            "--stage-name",
            "S",
            "--run-id",
            "r",
        ],
        2,
        "fns has no attribute 'nope'",
    ),
    (
        "dpf-unknown-run-on-a-stage",
        ["dpf", "status", "nosuch", "--stage-name", "KEPT"],
        1,
        "No DPF run 'nosuch' on @KEPT",
    ),
    ("pool-stop-unknown", ["pool", "stop", "NOPE"], 1, "Compute pool 'NOPE' does not exist"),
    (
        "dpf-partition-by-with-stage",
        dpf_run("--stage", "@S/x", "--partition-by", "K"),
        2,
        "--partition-by applies to --table and --sql; with --stage each file is a partition",
    ),
    ("job-result-unknown", ["job", "result", "nosuchjob"], 1, "No job 'nosuchjob'"),
]


@pytest.mark.parametrize(("args", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_and_an_exit_code(
    tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    script = tmp_path / "hello.py"
    script.write_text(SCRIPT)
    (tmp_path / "fns.py").write_text("def f(data, context):\n    pass\n")
    (tmp_path / "home" / "stages" / "KEPT").mkdir(parents=True)
    env = {**os.environ, "SHOAL_HOME": str(tmp_path / "home")}
    env.pop("SHOAL_DEBUG", None)
    shoal = Path(sys.executable).parent / "shoal"
    if "KEPT" in args:
        subprocess.run(
            [str(shoal), "stage", "create", "KEPT", "--exist-ok"], env=env, check=True, timeout=120
        )
    done = subprocess.run(
        [str(shoal), *(a.replace("{script}", str(script)) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, f"stderr is not one line: {done.stderr!r}"
    assert lines[0].startswith("Error: "), lines[0]
    assert fragment in lines[0]
    assert done.returncode == code, (done.returncode, lines[0])
    assert "s3cr3t" not in done.stderr, "a value given to --env may be a secret"
    assert not list((tmp_path / "home").glob("pools/*")), "no pool was created"


BUG = """
import click, sys
from shoal.cli import cli, main

@cli.command("explode")
def explode():
    raise TypeError("unsupported operand")

main(sys.argv[1:])
"""


@pytest.mark.parametrize("debug", [None, "flag", "env"])
def test_an_unexpected_error_is_one_line_unless_debugging(tmp_path: Path, debug: str | None) -> None:
    env = {**os.environ, "SHOAL_HOME": str(tmp_path / "home")}
    env.pop("SHOAL_DEBUG", None)
    if debug == "env":
        env["SHOAL_DEBUG"] = "1"
    args = ["--debug", "explode"] if debug == "flag" else ["explode"]
    done = subprocess.run(
        [sys.executable, "-c", BUG, *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1
    if debug is None:
        assert done.stderr.strip().splitlines() == [
            "Error: TypeError: unsupported operand (not an error shoal expected: run again with --debug or "
            "SHOAL_DEBUG=1 for the traceback, and report it)"
        ]
    else:
        assert "Traceback (most recent call last)" in done.stderr
        assert done.stderr.strip().endswith("TypeError: unsupported operand")


def test_shoal_run_shows_the_script_s_own_error_as_python_would(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("def f():\n    raise ValueError('bad input row 7')\nf()\n")
    exits = tmp_path / "exits.py"
    exits.write_text("import sys\nsys.exit(3)\n")
    env = {**os.environ, "SHOAL_HOME": str(tmp_path / "home")}
    env.pop("SHOAL_DEBUG", None)
    shoal = Path(sys.executable).parent / "shoal"
    done = subprocess.run(
        [str(shoal), "run", str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr, "the script's error, not shoal's"
    assert done.stderr.strip().endswith("ValueError: bad input row 7")
    assert 'bad.py", line 2, in f' in done.stderr
    done = subprocess.run(
        [str(shoal), "run", str(exits)], capture_output=True, text=True, env=env, timeout=120
    )
    assert (done.returncode, done.stderr) == (3, "")

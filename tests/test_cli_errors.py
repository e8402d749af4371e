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
    ("bad-stage-name", ["stage", "create", "bad;name"], 1, "is not an identifier"),
    ("unknown-job-logs", ["job", "logs", "nosuchjob"], 1, "No job 'nosuchjob'"),
    ("unknown-job-status", ["job", "status", "nosuchjob"], 1, "No job 'nosuchjob'"),
    ("missing-argument", ["job", "status"], 2, "Missing argument 'JOB_ID'"),
    ("gc-negative-age", ["stage", "gc", "--older-than", "-1"], 2, "--older-than"),
    ("unknown-command", ["jobs"], 2, "No such command 'jobs'"),
]


@pytest.mark.parametrize(("args", "code", "fragment"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_mistake_is_one_line_and_an_exit_code(
    tmp_path: Path, args: list[str], code: int, fragment: str
) -> None:
    script = tmp_path / "hello.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "SHOAL_HOME": str(tmp_path / "home")}
    env.pop("SHOAL_DEBUG", None)
    shoal = Path(sys.executable).parent / "shoal"
    done = subprocess.run(
        [str(shoal), *(a.replace("{script}", str(script)) for a in args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, f"stderr is not one line: {done.stderr!r}"
    assert lines[0].startswith("Error: "), lines[0]
    assert fragment in lines[0]
    assert done.returncode == code, (done.returncode, lines[0])

"""Secrets given to a job (``env_vars=``, ``--env``) reach its payload and its Ray workers on
every node, and are found in no file and no command's output; the pool's folders are private.

Real 2-node local pool; the secret is random; every file under the pool's temporary folders and
under SHOAL_HOME is searched for it.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import shoal
from pool_helpers import pool_in_new_home
from shoal.cli import cli
from shoal.jobs import get_job, submit_file

pytestmark = [pytest.mark.slow, pytest.mark.ray]

POOL = "SECRETS2"
STAGE = "secrets"

PAYLOAD = """
import hashlib
import os

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy


def digest(value):
    return hashlib.sha256(value.encode()).hexdigest() if value is not None else None


@ray.remote(num_cpus=0)
def seen_by_a_worker():
    return ray.get_runtime_context().get_node_id(), digest(os.environ.get("API_KEY"))


ray.init(address="auto")
nodes = os.environ["SHOAL_JOB_NODE_IDS"].split(",")
refs = [
    seen_by_a_worker.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote()
    for node in nodes
]
print("variables given:", sorted(k for k in os.environ if k == "API_KEY"))
__return__ = {"payload": digest(os.environ.get("API_KEY")), "workers": sorted(ray.get(refs))}
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("secrets-home")
    for ready in pool_in_new_home(home, POOL, 2):
        shoal.create_stage(STAGE, exist_ok=True)
        yield ready


@pytest.fixture(autouse=True)
def _use_pool(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOAL_HOME", str(home))


def pool_temp_root() -> Path:
    from shoal.pools.api import get_backend

    backend = get_backend(POOL)
    state = backend._load()  # type: ignore[attr-defined]
    return Path(backend._ray_temp_root(state.pool_id))  # type: ignore[attr-defined]


def files_holding(secrets_: list[bytes], since: float, *roots: Path) -> list[str]:
    """The files under ``roots`` that hold one of ``secrets_``. Only files written since
    ``since`` are read: the secrets were made after it, so no older file can hold them."""
    found = []
    for root in roots:
        for folder, _dirs, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                try:
                    facts = path.lstat()
                    if not stat.S_ISREG(facts.st_mode) or facts.st_mtime < since:
                        continue
                    content = path.read_bytes()
                except (FileNotFoundError, PermissionError):
                    continue
                found += [f"{path} ({secret.decode()[:4]}...)" for secret in secrets_ if secret in content]
    return found


def cli_output(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_a_secret_reaches_payload_and_workers_and_no_file_or_output(home: Path, tmp_path: Path) -> None:
    started = time.time() - 2  # a file system's times may lag the clock a little
    python_secret = f"py-{secrets.token_hex(16)}"
    cli_secret = f"cli-{secrets.token_hex(16)}"
    script = tmp_path / "uses_secret.py"
    script.write_text(PAYLOAD)
    by_python = submit_file(
        str(script), POOL, stage_name=STAGE, target_instances=2, env_vars={"API_KEY": python_secret}
    )
    submitted = cli_output(
        "job",
        "submit",
        str(script),
        "--pool",
        POOL,
        "--stage-name",
        STAGE,
        "--instances",
        "2",
        "--env",
        f"API_KEY={cli_secret}",
        "--wait",
        "--json",
    )
    by_cli = get_job(json.loads(submitted[submitted.index("{") :])["id"])
    for job, secret in ((by_python, python_secret), (by_cli, cli_secret)):
        assert job.wait(timeout=180).value == "DONE", job.get_logs()
        result = job.result()
        expected = hashlib.sha256(secret.encode()).hexdigest()
        assert result["payload"] == expected, "the payload sees the variable"
        assert len(result["workers"]) == 2, "one task on each node of the job"
        assert {seen for _node, seen in result["workers"]} == {expected}, "every node's workers see it"
        assert "variables given: ['API_KEY']" in job.get_logs()

    outputs = [
        cli_output("job", "ls", "--limit", "0"),
        *(cli_output("job", "status", job.id) for job in (by_python, by_cli)),
        *(cli_output("job", "logs", job.id) for job in (by_python, by_cli)),
        submitted,
        str(shoal.jobs.list_jobs(limit=0).to_dict()),
    ]
    temp_root = pool_temp_root()
    for secret in (python_secret, cli_secret):
        assert not [o for o in outputs if secret in o], "a command printed the secret"
    roots = (temp_root, home, Path(tempfile_dir()))
    leaks = files_holding([python_secret.encode(), cli_secret.encode()], started, *roots)
    assert leaks == [], f"a secret is written in {leaks}"
    canary = tmp_path / "canary.txt"  # the scan finds a secret where one is written
    canary.write_text(f"API_KEY={cli_secret}\n")
    assert files_holding([cli_secret.encode()], started, tmp_path) == [f"{canary} (cli-...)"]


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_the_pool_folders_are_private_and_job_folders_go_when_jobs_end(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    job = submit_file(str(script), POOL, stage_name=STAGE, target_instances=2, env_vars={"X": "1"})
    assert job.wait(timeout=180).value == "DONE"
    root = pool_temp_root()
    for folder in (root.parent, root, root / "agents"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, f"{folder} is not 0700"
    # Ray makes its own folders 0777 on purpose (shared machines); behind two 0700 folders no
    # other user reaches them. Every file, Ray's logs included, is its owner's only.
    shared = []
    for folder, _dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            info = path.lstat()
            if stat.S_ISREG(info.st_mode) and info.st_mode & 0o077:
                shared.append(f"{path} {stat.filemode(info.st_mode)}")
    assert shared == [], "files of the pool that others could read"
    deadline = time.monotonic() + 30
    while left := [p.name for p in (root / "agents").iterdir() if job.name in p.name]:
        assert time.monotonic() < deadline, f"the job's agent folders outlived it by 30 s: {left}"
        time.sleep(0.2)


def test_a_pythonpath_among_the_variables_reaches_a_workers_imports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from shoal.runtime.job_env import set_variables

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(os, "environ", dict(os.environ))
    (tmp_path / "only_here.py").write_text("VALUE = 42\n")
    set_variables({"PYTHONPATH": str(tmp_path), "TOKEN": "t"})
    assert sys.path[0] == str(tmp_path)
    assert os.environ["TOKEN"] == "t"
    import only_here  # type: ignore[import-not-found]

    assert only_here.VALUE == 42
    sys.modules.pop("only_here")

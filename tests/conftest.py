"""Shared fixtures: every test gets its own SHOAL_HOME and a fresh plugin manager."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from shoal.plugin_manager import set_plugin_manager

REPO_ROOT = Path(__file__).resolve().parent.parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shuffle",
        metavar="SEED",
        default=os.environ.get("SHOAL_TEST_SHUFFLE"),
        help="run the modules, and the tests within each module, in an order shuffled by SEED "
        "('random' picks one and prints it); default: $SHOAL_TEST_SHUFFLE, else file order",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "multihost: starts a Ray cluster of several hosts in network namespaces (needs root; "
        "tests/netns_cluster.py)",
    )


def _shuffle_seed(config: pytest.Config) -> int | None:
    value = config.getoption("--shuffle")
    if value in (None, ""):
        return None
    if value == "random":
        value = str(random.SystemRandom().randrange(10**6))
        config.option.shuffle = value  # the header and a re-run show the same seed
    try:
        return int(value)
    except ValueError:
        raise pytest.UsageError(f"--shuffle takes a whole number or 'random', got {value!r}") from None


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = _shuffle_seed(config)
    return None if seed is None else f"shuffled order: --shuffle {seed} runs it again"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--shuffle SEED``: modules in a shuffled order, and the tests of each module shuffled among
    themselves. A module's tests stay together, so a module's shared pool is never up at the same
    time as another's (two Ray clusters on 2 cores slow every test)."""
    seed = _shuffle_seed(config)
    if seed is None:
        return
    rng = random.Random(seed)
    by_module: dict[str, list[pytest.Item]] = {}
    for item in items:
        by_module.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    modules = list(by_module.values())
    rng.shuffle(modules)
    for module_items in modules:
        rng.shuffle(module_items)
    items[:] = [item for module_items in modules for item in module_items]


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point SHOAL_HOME at a temporary folder and start from a fresh plugin manager."""
    home = tmp_path / "home"
    monkeypatch.setenv("SHOAL_HOME", str(home))
    monkeypatch.delenv("SHOAL_BLOCKED_PLUGINS", raising=False)
    monkeypatch.delenv("SHOAL_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    set_plugin_manager(None)
    yield home
    set_plugin_manager(None)


# -- nothing of a pool outlives the suite ---------------------------------------------------------

_POOLS_BEFORE: set[int] = set()


def _pool_processes() -> dict[int, str]:
    """Live processes of local pools (they carry SHOAL_POOL_ID), with their command lines."""
    import psutil

    found = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "SHOAL_POOL_ID" in proc.environ() and proc.status() != psutil.STATUS_ZOMBIE:
                found[proc.pid] = " ".join(proc.info["cmdline"] or [])[:160]
        except (psutil.Error, OSError):
            continue
    return found


def pytest_sessionstart(session: pytest.Session) -> None:
    _POOLS_BEFORE.update(_pool_processes())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite's last check: every pool it started has stopped. Left processes are listed,
    the run fails, and they are ended (by pid) so the next run starts clean."""
    if getattr(session.config, "workerinput", None) is not None or session.testscollected < 2:
        return  # a single test (or an xdist worker) leaves pools to the whole run's check
    import time

    deadline = time.monotonic() + 15  # a pool dropped by the last fixture may still be going
    while (left := {p: c for p, c in _pool_processes().items() if p not in _POOLS_BEFORE}) and (
        time.monotonic() < deadline
    ):
        time.sleep(0.5)
    if not left:
        return
    from shoal.processes import terminate

    lines = "\n".join(f"  {pid}: {command}" for pid, command in sorted(left.items()))
    session.config.get_terminal_writer().line(
        f"\nprocesses of pools the suite started are still running:\n{lines}", red=True
    )
    terminate(set(left), grace_s=2.0)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def pools_made() -> Iterator[list[str]]:
    """Names of pools a test creates itself: each is dropped after the test, passed or failed
    (a test that drops one itself leaves nothing to do)."""
    names: list[str] = []
    yield names
    import shoal
    from shoal.pools.records import PoolNotFoundError

    for name in names:
        try:
            shoal.drop_compute_pool(name)
        except PoolNotFoundError:
            continue

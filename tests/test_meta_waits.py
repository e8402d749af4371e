"""The suite waits on things, never for a while: every ``while`` poll in a test has a deadline,
and ``time.sleep`` is only a poll's pause, work a payload simulates, or one of the few
documented exceptions below. (Strings holding code for other processes are not checked: those
processes run under a ``timeout``.)"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent

#: Functions that run as a job's or a partition's payload (or in its Ray tasks): their sleeps
#: are the work they simulate, and ``while True`` the job that runs until it is cancelled.
PAYLOAD_FUNCTIONS = {
    "slow",
    "slow_rows",
    "slow_out",
    "slow_fit",
    "fail_then_sleep",
    "sleep_forever",
    "ignore_sigterm",
    "one_hangs",
    "where",
    "print_and_wait",
    "wait_for_gate",
}

#: (module, function) -> why its sleep is not a synchronisation.
SLEEPS_ALLOWED = {
    ("test_jobs.py", "release_soon"): "releases the job while `--follow` runs; the test holds either way",
    ("test_jobs.py", "test_cancel_during_the_warm_start_stops_every_process_of_the_job"): (
        "the two moments a cancel may come at (queued, taken by the warm interpreter)"
    ),
    ("test_ui.py", "test_twenty_watchers_of_a_run_page_cost_the_server_what_one_costs"): (
        "the span over which reads and CPU are measured; nothing is awaited"
    ),
}


def _functions(tree: ast.AST) -> dict[ast.AST, str]:
    """Each node of the module mapped to the name of the innermost function holding it."""
    owner: dict[ast.AST, str] = {}

    def visit(node: ast.AST, name: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else name
            owner[child] = inner
            visit(child, inner)

    visit(tree, "<module>")
    return owner


def _has_deadline(loop: ast.While) -> bool:
    text = ast.unparse(loop)
    return any(
        word in text for word in ("deadline", "monotonic()", "wait_until")
    ) or "queue.step(" in ast.unparse(loop.test)


def _offences() -> list[str]:
    found = []
    for path in sorted(TESTS.glob("*.py")):
        if path.name in ("waiting.py", Path(__file__).name):
            continue
        tree = ast.parse(path.read_text())
        owner = _functions(tree)
        polls: set[ast.AST] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.While):
                function = owner.get(node, "<module>")
                if _has_deadline(node) or function in PAYLOAD_FUNCTIONS:
                    polls.update(ast.walk(node))
                else:
                    found.append(f"{path.name}:{node.lineno} in {function}: a while loop without a deadline")
        for node in ast.walk(tree):
            is_sleep = (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "sleep"
                and ast.unparse(node.func.value) == "time"
            )
            if not is_sleep or node in polls:
                continue
            function = owner.get(node, "<module>")
            if function in PAYLOAD_FUNCTIONS or (path.name, function) in SLEEPS_ALLOWED:
                continue
            found.append(
                f"{path.name}:{node.lineno} in {function}: time.sleep outside a poll with a deadline"
            )
    return found


def test_every_wait_has_a_deadline_and_no_sleep_synchronises() -> None:
    assert _offences() == [], "wait on the event, file or status (tests/waiting.py), with a deadline"


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    bad = ast.parse(
        "import time\ndef test_x():\n    while not ready():\n        time.sleep(1)\n    time.sleep(2)\n"
    )
    owner = _functions(bad)
    loop = next(n for n in ast.walk(bad) if isinstance(n, ast.While))
    assert owner[loop] == "test_x"
    assert not _has_deadline(loop)
    good = ast.parse("while not ready():\n    assert time.monotonic() < deadline\n")
    assert _has_deadline(next(n for n in ast.walk(good) if isinstance(n, ast.While)))

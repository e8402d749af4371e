"""``wait_until``: the one way tests wait for something another process or thread does.

Polls ``condition`` until it is true and fails after ``timeout_s`` saying what it waited for and
what it last saw, so a failure costs its deadline, never the suite's 600-second test timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    condition: Callable[[], Any], what: str, timeout_s: float = 60.0, *, seen: Callable[[], Any] | None = None
) -> Any:
    """Return ``condition()``'s first true value; ``AssertionError`` after ``timeout_s`` naming
    ``what`` was awaited and, with ``seen``, the state last seen."""
    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            last = f"; last seen: {seen()!r}" if seen is not None else ""
            raise AssertionError(f"waited {timeout_s:.0f} s for {what}{last}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def within(timeout_s: float, what: str, action: Callable[[], Any]) -> Any:
    """Run ``action`` and return its value or raise its exception, failing with ``what`` if it
    has not ended after ``timeout_s`` (it goes on in a daemon thread: the test fails at once)."""
    import threading

    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = action()
        except BaseException as exc:  # handed to the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name=f"within-{what}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise AssertionError(f"{what}: not done after {timeout_s:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")

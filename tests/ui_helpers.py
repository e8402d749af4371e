"""``shoal ui`` in a process of its own, for the web view's tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from waiting import wait_until


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def start_ui(home: Path, host: str = "127.0.0.1") -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``shoal ui`` over ``home``, bound to ``host`` on a free port; yields its base URL (always
    on 127.0.0.1) and its process once it answers; stops it (by its pid) at the end."""
    port = free_port()
    shoal = Path(sys.executable).parent / "shoal"
    process = subprocess.Popen(
        [str(shoal), "ui", "--host", host, "--port", str(port)],
        env={**os.environ, "SHOAL_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert process.poll() is None, f"shoal ui exited: {process.stderr.read() if process.stderr else ''}"
        try:
            return status_of(base + "/api/pools") in (200, 401)
        except OSError:
            return False

    try:
        wait_until(answers, f"shoal ui on {host} to answer /api/pools", 60)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)

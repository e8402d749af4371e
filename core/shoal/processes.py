"""Find and stop the processes of a local pool node.

Every process of a node descends from a launcher started in a new session, so they share its
session id; Ray moves Python workers into their own process groups, which is why the session
(not the process group) is what identifies a node. Every process also inherits the environment
marker ``SHOAL_POOL_ID=<id>``. A node's processes are: same session, or same marker, plus all
their descendants.

Runs on the machine of the local pool (driver or CLI).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

import psutil


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def session_members(sid: int) -> set[int]:
    """Pids of live processes in session ``sid``."""
    found: set[int] = set()
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == sid and _alive(proc):
                found.add(proc.pid)
        except (OSError, psutil.Error):
            continue
    return found


def marked_processes(marker: str) -> set[int]:
    """Pids of live processes whose environment contains ``marker`` (``KEY=value``)."""
    key, _, value = marker.partition("=")
    found: set[int] = set()
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(key) == value and _alive(proc):
                found.add(proc.pid)
        except (psutil.Error, OSError):
            continue
    return found


def with_descendants(pids: Iterable[int]) -> set[int]:
    found = set(pids)
    for pid in list(found):
        try:
            found.update(child.pid for child in psutil.Process(pid).children(recursive=True) if _alive(child))
        except psutil.Error:
            continue
    return found


def alive(pids: Iterable[int]) -> list[int]:
    result = []
    for pid in pids:
        try:
            if _alive(psutil.Process(pid)):
                result.append(pid)
        except psutil.Error:
            continue
    return result


def terminate(pids: Iterable[int], *, first: Iterable[int] = (), grace_s: float = 5.0) -> float:
    """SIGTERM ``first`` then the rest, wait up to ``grace_s``, then SIGKILL what is left.

    Returns the seconds it took until none of them runs. Raises ``RuntimeError`` if a process
    survives SIGKILL for 30 s (it names them).
    """
    started = time.monotonic()
    targets = set(pids) | set(first)
    for group in (list(first), [p for p in targets if p not in set(first)]):
        for pid in group:
            _signal(pid, signal.SIGTERM)
    deadline = started + grace_s
    while time.monotonic() < deadline and alive(targets):
        time.sleep(0.05)
    for pid in alive(targets):
        _signal(pid, signal.SIGKILL)
    while alive(targets):
        if time.monotonic() - started > grace_s + 30:
            raise RuntimeError(f"processes survived SIGKILL: {alive(targets)}")
        time.sleep(0.05)
    return time.monotonic() - started


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

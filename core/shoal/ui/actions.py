"""What the web view's buttons do, each through the public API a user has (``shoal ui`` process).

* cancel a job: ``MLJob.cancel()``;
* cancel a run: ``DPFRun.cancel()``;
* retry a run's failed partitions: ``DPFRun.retry_failed()``, a new run linked from the old one;
* stop a pool's idle nodes: ``shoal.stop_idle_nodes(name)``.

Each returns an :class:`Outcome`: what it did (or why it did nothing), whether that is an error,
and where to look next. A name that is not there raises :class:`shoal.ui.views.NotFound`, as the
pages do. Plain functions, no HTTP: :mod:`shoal.ui.app` checks the method and the CSRF token.

The server runs each in a process of its own (:func:`run_isolated`, ``python -m
shoal.ui.actions NAME ARGS...``): cancelling a job or submitting a retry connects to the pool's
Ray cluster, and the server must never become a driver of a cluster that may be stopped later.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from shoal.errors import ShoalError
from shoal.ui import views


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the page that answers it."""

    message: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, href)
    error: bool = False


#: how long an action may take before the server stops it and says so
ACTION_TIMEOUT_S = 180.0


def cancel_job(job_id: str) -> Outcome:
    handle = views._job(job_id)
    back = [(f"job {handle.id}", f"/jobs/{handle.id}")]
    status = handle.status
    if status.is_terminal:
        return Outcome(f"job {handle.id} had already ended {status.value}; nothing was cancelled", back)
    try:
        handle.cancel()
    except ShoalError as exc:  # its pool is not running: say so
        return Outcome(f"job {handle.id} could not be cancelled: {exc}", back, error=True)
    return Outcome(f"cancelled job {handle.id} (it was {status.value}; now {handle.status.value})", back)


def cancel_run(stage_name: str, run_id: str) -> Outcome:
    from shoal.dpf import RunStatus

    run = views._run(stage_name, run_id)
    back = [(f"run {run_id}", f"/stages/{run.stage_name}/runs/{run_id}")]
    if run.status != RunStatus.IN_PROGRESS:
        return Outcome(f"run {run_id} had already ended {run.status.value}; nothing was cancelled", back)
    run.cancel()
    return Outcome(
        f"asked run {run_id} to cancel: no new partition starts, running ones stop, finished ones "
        f"keep their artifacts",
        back,
    )


def retry_run(stage_name: str, run_id: str) -> Outcome:
    run = views._run(stage_name, run_id)
    back = (f"run {run_id}", f"/stages/{run.stage_name}/runs/{run_id}")
    try:
        retry = run.retry_failed()
    except ShoalError as exc:  # still running, nothing failed: say why, change nothing
        return Outcome(str(exc), [back], error=True)
    count = retry.definition.get("num_partitions")
    return Outcome(
        f"started run {retry.run_id} of the {count} failed partition(s) of run {run_id}",
        [(f"run {retry.run_id}", f"/stages/{run.stage_name}/runs/{retry.run_id}"), back],
    )


def stop_idle_nodes(pool_name: str) -> Outcome:
    from shoal.pools.idle import stop_idle_nodes as stop

    described = views.pool(pool_name)  # NotFound for a pool that is not there
    name = described["name"]
    back = [("pools", "/pools")]
    try:
        stopped = stop(name)
    except ShoalError as exc:
        return Outcome(str(exc), back, error=True)
    if not stopped:
        return Outcome(f"pool {name} has no idle node to stop (the head and min_nodes stay)", back)
    indexes = ", ".join(map(str, stopped))
    return Outcome(f"stopped {len(stopped)} idle node(s) of pool {name}: {indexes}", back)


ACTIONS: dict[str, Callable[..., Outcome]] = {
    "cancel_job": cancel_job,
    "cancel_run": cancel_run,
    "retry_run": retry_run,
    "stop_idle_nodes": stop_idle_nodes,
}


def run_isolated(name: str, arguments: list[str]) -> Outcome:
    """Run the action ``name`` in a new Python process and return its outcome (``NotFound`` as
    it raised it); an outcome that says so when it failed or took over :data:`ACTION_TIMEOUT_S`."""
    if name not in ACTIONS:
        raise ValueError(f"no action {name!r}")
    command = [sys.executable, "-m", "shoal.ui.actions", name, *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=ACTION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Outcome(f"{name} did not finish within {ACTION_TIMEOUT_S:g} s and was stopped", error=True)
    lines = done.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = " ".join(done.stderr.strip().splitlines()[-3:])
        return Outcome(f"{name} failed (exit {done.returncode}): {tail}", error=True)
    if "not_found" in answer:
        raise views.NotFound(answer["not_found"])
    return Outcome(answer["message"], [tuple(link) for link in answer["links"]], answer["error"])


def main(argv: list[str]) -> int:
    """``python -m shoal.ui.actions NAME ARGS...``: run one action, print its outcome as JSON."""
    name, arguments = argv[0], argv[1:]
    try:
        outcome = ACTIONS[name](*arguments)
    except views.NotFound as exc:
        print(json.dumps({"not_found": str(exc)}))
        return 0
    except ShoalError as exc:
        outcome = Outcome(str(exc), error=True)
    print(json.dumps(asdict(outcome)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""What the web view's buttons do, each through the public API a user has (``shoal ui`` process).

* cancel a job: ``MLJob.cancel()``;
* cancel a run: ``DPFRun.cancel()``;
* retry a run's failed partitions: ``DPFRun.retry_failed()``, a new run linked from the old one;
* stop a pool's idle nodes: ``shoal.stop_idle_nodes(name)``.

Each returns an :class:`Outcome`: what it did (or why it did nothing), whether that is an error,
and where to look next. A name that is not there raises :class:`shoal.ui.views.NotFound`, as the
pages do. Plain functions, no HTTP: :mod:`shoal.ui.app` checks the method and the CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.errors import ShoalError
from shoal.ui import views


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the page that answers it."""

    message: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (text, href)
    error: bool = False


def cancel_job(job_id: str) -> Outcome:
    handle = views._job(job_id)
    back = [(f"job {handle.id}", f"/jobs/{handle.id}")]
    status = handle.status
    if status.is_terminal:
        return Outcome(f"job {handle.id} had already ended {status.value}; nothing was cancelled", back)
    handle.cancel()
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

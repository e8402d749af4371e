"""What the web view shows, as plain data: pools, jobs, runs, partitions and models (``shoal ui``
process).

Every function reads through shoal's public API (the one ``shoal pool``, ``shoal job`` and
``shoal dpf`` use) and returns JSON-ready values. A name that does not resolve (a pool, job,
stage, run, partition or file that is not there) raises :class:`NotFound`; a bad query value
raises :class:`BadRequest`. Paths never come from the request as such: a partition is looked up
among its run's partitions, a file among its partition's files, so nothing outside a stage (or
outside the run) can be named.
"""

from __future__ import annotations

import math
from typing import Any

from shoal.errors import ShoalError

#: what a run's partition table sorts by (``?sort=``)
PARTITION_SORT_KEYS = ("partition_id", "status", "attempts", "duration_s", "started_at", "node_id")
MAX_PAGE = 1000


class NotFound(ShoalError, LookupError):
    """What the request names is not in the workspace (404)."""


class BadRequest(ShoalError, ValueError):
    """A query value is wrong (400); the message says which and what is allowed."""


def _iso(seconds: Any) -> str | None:
    from shoal.cli.output import iso_utc

    return iso_utc(seconds) if isinstance(seconds, (int, float)) and math.isfinite(seconds) else None


# -- pools ------------------------------------------------------------------------------------


def pools() -> list[dict[str, Any]]:
    """Every pool of the workspace, as ``shoal pool ls`` lists them."""
    from shoal.pools.api import list_compute_pools

    return [_plain(pool) for pool in list_compute_pools()]


def pool(name: str) -> dict[str, Any]:
    """One pool, as ``shoal pool describe`` shows it, with the jobs that have not ended on it."""
    from shoal.errors import ConfigError
    from shoal.pools.api import describe_compute_pool

    try:
        described = _plain(describe_compute_pool(name))
    except (ConfigError, LookupError) as exc:
        raise NotFound(f"no compute pool {name!r}") from exc
    running = [j for j in jobs(pool_name=described["name"]) if not j["ended"]]
    for row in running:  # which nodes each holds, for the nodes' table
        try:
            row["node_ids"] = list(_job(row["id"]).details().get("node_ids") or [])
        except NotFound:
            row["node_ids"] = []
    described["jobs"] = running
    return described


# -- jobs -------------------------------------------------------------------------------------


def jobs(
    status: str | None = None, pool_name: str | None = None, name: str | None = None, limit: int = 0
) -> list[dict[str, Any]]:
    """Jobs, newest first, as ``shoal job ls`` lists them: filtered by status, pool and a part of
    the name (case-insensitive); ``limit`` 0 for all."""
    from shoal.jobs.listing import job_summaries
    from shoal.jobs.status import JobStatus

    terminal = {s.value for s in JobStatus if s.is_terminal}
    rows = []
    for summary in job_summaries(0):
        if status and summary.status != status.upper():
            continue
        if pool_name and summary.compute_pool != pool_name.upper():
            continue
        if name and name.lower() not in summary.name.lower():
            continue
        rows.append(
            {
                "id": summary.name,
                "status": summary.status,
                "message": summary.message,
                "owner": summary.owner,
                "compute_pool": summary.compute_pool,
                "target_instances": summary.target_instances,
                "created_time": _iso(summary.created_time),
                "completed_time": _iso(summary.completed_time),
                "ended": summary.status in terminal,
            }
        )
        if limit and len(rows) >= limit:
            break
    return rows


def _job(job_id: str) -> Any:
    from shoal.errors import RecordError
    from shoal.jobs import get_job

    try:
        return get_job(job_id)
    except (RecordError, LookupError, ValueError) as exc:
        raise NotFound(f"no job {job_id!r}") from exc


def job(job_id: str) -> dict[str, Any]:
    """A job's status document, record and the names of its instances' logs."""
    handle = _job(job_id)
    details = _plain(handle.details())
    for key in ("created_time", "started_time", "completed_time", "updated"):
        if key in details:
            details[key] = _iso(details[key])
    details.update(
        id=handle.id,
        name=handle.name,
        compute_pool=handle.compute_pool,
        target_instances=handle.target_instances,
        min_instances=handle.min_instances,
        stage_path=handle.stage_path,
        status=handle.status.value,
        instances=list(range(int(details.get("instances") or handle.target_instances))),
    )
    return details


def job_logs(job_id: str, instance: int | None = None) -> str:
    """One instance's log (instance 0, the payload's, by default), as ``shoal job logs`` prints it."""
    handle = _job(job_id)
    try:
        return str(handle.get_logs(instance_id=instance))
    except (ValueError, LookupError) as exc:
        raise NotFound(str(exc)) from exc


def job_result(job_id: str) -> dict[str, Any]:
    """A finished job's result, or its error with the traceback; ``{"status"}`` alone before."""
    from shoal.jobs.status import JobStatus

    handle = _job(job_id)
    status = handle.status
    if not status.is_terminal:
        return {"status": status.value}
    if status == JobStatus.CANCELLED:
        return {"status": status.value, "error": {"type": "JobCancelledError", "message": "cancelled"}}
    error = handle.error()  # as the job wrote it: nothing of the job's is unpickled here
    if error is not None:
        return {"status": status.value, "error": {**error, "type": error["type"].rsplit(".", 1)[-1]}}
    try:
        value = handle.result(timeout=0)
    except RuntimeError as exc:  # it ended without a result (killed): the job's message says why
        return {"status": status.value, "error": {"type": type(exc).__name__, "message": str(exc)}}
    return {"status": status.value, "result": _jsonable(value)}


# -- runs -------------------------------------------------------------------------------------


def _stage(stage_name: str) -> Any:
    from shoal.stages import get_stage

    try:
        return get_stage(stage_name)
    except (LookupError, ShoalError) as exc:
        raise NotFound(f"no stage {stage_name!r}") from exc


def _run(stage_name: str, run_id: str) -> Any:
    from shoal.dpf import DPFRun
    from shoal.errors import ConfigError, RunNotFoundError

    stage = _stage(stage_name)
    try:  # a bad id ("..", "a/b") is a ConfigError: it names no run either
        return DPFRun.restore_from(run_id, stage.name)
    except (ConfigError, RunNotFoundError) as exc:
        raise NotFound(f"no run {run_id!r} on stage {stage.name}") from exc


def run_ids(stage_name: str) -> list[str]:
    """The ids of the DPF and many-model runs on a stage."""
    from shoal.dpf import layout

    return layout.run_ids(_stage(stage_name))


def runs(stage_name: str) -> list[dict[str, Any]]:
    """Every run on a stage, as ``shoal dpf ls`` lists them."""
    return [run(stage_name, run_id) for run_id in run_ids(stage_name)]


def run(stage_name: str, run_id: str) -> dict[str, Any]:
    """A run: its status, message, kind (``dpf``, ``mmt-training``, ``mmt-inference``) and counts."""
    handle = _run(stage_name, run_id)
    return _summary(handle, handle.partition_details)


def run_and_partitions(stage_name: str, run_id: str, **paging: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """:func:`run` (with ``"finished"``: :func:`finished_over_time`) and a page of
    :func:`partitions` (``paging``: its keywords) from one read of the run's partitions (a run's
    page shows them all)."""
    handle = _run(stage_name, run_id)
    details = handle.partition_details
    summary = _summary(handle, details)
    summary["finished"] = finished_over_time(details)
    return summary, _page(details, **paging)


#: at most this many points in a run's plot
MAX_POINTS = 500


def finished_over_time(details: dict[str, Any]) -> dict[str, list[float]]:
    """How many partitions had finished DONE, and FAILED (or INTERNAL_ERROR), at each moment one
    finished: ``{"t": [seconds since the first start], "done": [...], "failed": [...]}``, at most
    :data:`MAX_POINTS` points (the last one always kept)."""
    started = [d.started_at for d in details.values() if d.started_at is not None]
    ended = sorted(
        (d.ended_at, d.status.value)
        for d in details.values()
        if d.ended_at is not None and d.status.value in ("DONE", "FAILED", "INTERNAL_ERROR")
    )
    series: dict[str, list[float]] = {"t": [], "done": [], "failed": []}
    if not started or not ended:
        return series
    origin, done, failed = min(started), 0, 0
    points = []
    for at, status in ended:
        done, failed = (done + 1, failed) if status == "DONE" else (done, failed + 1)
        points.append((round(at - origin, 3), done, failed))
    step = max(1, math.ceil(len(points) / MAX_POINTS))
    kept = points[::step] + ([points[-1]] if (len(points) - 1) % step else [])
    for at, done, failed in kept:
        series["t"].append(at)
        series["done"].append(done)
        series["failed"].append(failed)
    return series


def _summary(handle: Any, details: dict[str, Any]) -> dict[str, Any]:
    from shoal.cli.dpf_cmd import run_summary

    summary = run_summary(handle, handle.stage_name, details)
    definition = handle.definition
    summary.update(
        kind=_kind(definition),
        message=handle.message,
        mode=definition.get("mode"),
        created=_iso(definition.get("created")),
        function=definition.get("function"),
        total=sum(summary["partitions"].values()),
        retry_of=definition.get("retry_of"),
        retries=handle.retries,
    )
    return summary


def _kind(definition: dict[str, Any]) -> str:
    """``dpf``, ``mmt-training`` or ``mmt-inference``, from the run's definition."""
    from shoal.mmt.training import MMT_KEY

    many_model = definition.get(MMT_KEY)
    return f"mmt-{many_model.get('kind', 'training')}" if isinstance(many_model, dict) else "dpf"


def partitions(
    stage_name: str,
    run_id: str,
    *,
    status: str | None = None,
    sort: str = "partition_id",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    """A page of a run's partitions: ``{"total", "offset", "limit", "items": [...]}``, filtered
    by status, sorted by one of :data:`PARTITION_SORT_KEYS`."""
    details = _run(stage_name, run_id).partition_details
    return _page(details, status=status, sort=sort, descending=descending, offset=offset, limit=limit)


def _page(
    details: dict[str, Any],
    *,
    status: str | None = None,
    sort: str = "partition_id",
    descending: bool = False,
    offset: int = 0,
    limit: int = 100,
) -> dict[str, Any]:
    if sort not in PARTITION_SORT_KEYS:
        raise BadRequest(f"sort must be one of {', '.join(PARTITION_SORT_KEYS)}, got {sort!r}")
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise BadRequest(f"offset must be 0 or more and limit 1 to {MAX_PAGE}, got {offset} and {limit}")
    rows = [_partition_row(d) for d in details.values()]
    if status:
        rows = [r for r in rows if r["status"] == status.upper()]

    def missing_last(row: dict[str, Any]) -> tuple[bool, Any]:
        return (row[sort] is None, row[sort] if row[sort] is not None else 0)

    rows.sort(key=missing_last)
    if descending:
        rows.reverse()
    return {"total": len(rows), "offset": offset, "limit": limit, "items": rows[offset : offset + limit]}


def _partition_row(detail: Any) -> dict[str, Any]:
    return {
        "partition_id": detail.partition_id,
        "status": detail.status.value,
        "attempts": detail.attempts,
        "node_id": detail.node_id,
        "started_at": detail.started_at,
        "ended_at": detail.ended_at,
        "duration_s": detail.duration_s,
        "error": detail.error,
    }


def _partition(stage_name: str, run_id: str, partition_id: str) -> Any:
    details = _run(stage_name, run_id).partition_details
    if partition_id not in details:
        raise NotFound(f"no partition {partition_id!r} in run {run_id}")
    return details[partition_id]


def partition(stage_name: str, run_id: str, partition_id: str) -> dict[str, Any]:
    """One partition: its row and the names of the files in its folder."""
    detail = _partition(stage_name, run_id, partition_id)
    return {**_partition_row(detail), "files": detail.stage_artifacts_manager.list()}


def partition_log(stage_name: str, run_id: str, partition_id: str) -> str:
    """The partition's ``train.log`` (every attempt)."""
    detail = _partition(stage_name, run_id, partition_id)
    try:
        return str(detail.logs)
    except RuntimeError as exc:
        raise NotFound(str(exc)) from exc


def partition_file(stage_name: str, run_id: str, partition_id: str, filename: str) -> bytes:
    """The bytes of one file the partition left, looked up among its files by name."""
    artifacts = _partition(stage_name, run_id, partition_id).stage_artifacts_manager
    if filename not in artifacts.list():
        raise NotFound(f"no file {filename!r} in partition {partition_id!r} of run {run_id}")
    return bytes(_stage(stage_name).read_bytes(artifacts.path_of(filename)))


def models(stage_name: str, run_id: str) -> list[dict[str, Any]]:
    """The models of a many-model training run, as ``shoal mmt models`` lists them."""
    from shoal.mmt import ManyModelRun

    stage = _run(stage_name, run_id).stage_name  # a 404 of its own when there is no such run
    try:
        frame = ManyModelRun.restore_from(run_id, stage).models()
    except (ValueError, ShoalError) as exc:
        raise NotFound(f"run {run_id} is not a many-model training run: {exc}") from exc
    return [_plain(row) for row in frame.to_dict(orient="records")]


# -- JSON ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and other non-JSON leaves turned into plain values."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    item = getattr(value, "item", None)
    if callable(item):
        return _plain(item())
    return str(value)


def _jsonable(value: Any) -> Any:
    """A job's result for JSON: itself when it is plain data, else its ``repr``."""
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return {"repr": repr(value)[:2000]}
    return value

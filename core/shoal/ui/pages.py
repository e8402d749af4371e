"""The web view's pages: HTML over the same :mod:`shoal.ui.views` as the JSON API (``shoal ui``
process).

Rendered on the server with Jinja2 (autoescaped; the templates are in ``templates/`` inside the
package): no asset from the internet, nothing to build. A run's partitions are paged, sorted and
filtered on the server, as in the API.

The pools page, a job's page and a run's page are live: each names its **regions** (an element
id and the template that renders it, :data:`LIVE_REGIONS`), and a small inline script in
``base.html`` listens on the page's ``/live/...`` stream (:mod:`shoal.ui.live`), which sends the
regions rendered again whenever what they show changed. The page and its stream render from the
same context function, so they always agree.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from shoal.ui import views

TEMPLATES = Path(__file__).parent / "templates"
PAGE_SIZE = 100


def templates() -> Any:
    from starlette.templating import Jinja2Templates

    return Jinja2Templates(directory=str(TEMPLATES))


#: each live page's regions: element id -> the template that renders its content
LIVE_REGIONS: dict[str, dict[str, str]] = {
    "pools": {"live-pools": "pools_list.html"},
    "job": {
        "live-job-status": "job_status.html",
        "live-job-actions": "job_actions.html",
        "live-job-fields": "job_fields.html",
        "logs": "job_logs.html",
        "live-job-result": "job_result.html",
    },
    "run": {
        "live-run-status": "run_status.html",
        "live-run-summary": "run_summary.html",
        "live-run-actions": "run_actions.html",
        "live-run-partitions": "run_partitions.html",
    },
}


def _render(request: Any, template: str, section: str, **context: Any) -> Any:
    return templates().TemplateResponse(
        request, template, {"section": section, "csrf": request.app.state.csrf, **context}
    )


def _live(request: Any, template: str, section: str, page: str, context: dict[str, Any]) -> Any:
    """A live page: rendered with its stream's URL, which carries the fingerprint of the regions
    it shows (``seen``, see :mod:`shoal.ui.live`)."""
    from shoal.ui.live import digest

    context = {**context, "csrf": request.app.state.csrf}
    params = {k: v for k, v in request.query_params.items() if k not in ("seen", "token")}
    params["seen"] = digest(regions(page, context))
    live_url = "/live" + request.url.path + "?" + urlencode(params)
    return _render(request, template, section, live_url=live_url, **context)


#: a job that ended this long ago has its last log lines and result in place
SETTLED_AFTER_S = 5.0


def settled(page: str, context: dict[str, Any]) -> bool:
    """True when what ``page`` shows will not change any more: a job that ended at least
    :data:`SETTLED_AFTER_S` ago, a run that ended (its live stream then stops reading)."""
    import time
    from datetime import datetime

    if page == "job":
        job = context["job"]
        ended = job.get("completed_time")
        if job.get("status") not in ("DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR") or not ended:
            return False
        return (
            time.time() - datetime.fromisoformat(ended.replace("Z", "+00:00")).timestamp() >= SETTLED_AFTER_S
        )
    if page == "run":
        return bool(context["run"]["status"] != "IN_PROGRESS")
    return False


def regions(page: str, context: dict[str, Any]) -> dict[str, str]:
    """The live regions of ``page`` (a key of :data:`LIVE_REGIONS`) rendered from ``context``."""
    env = templates().env
    return {element: env.get_template(name).render(context) for element, name in LIVE_REGIONS[page].items()}


def pools_context(params: Any = None) -> dict[str, Any]:
    """Every pool, with its nodes' CPU and memory of the last minute (``usage``, for local pools)."""
    from shoal.ui.usage import pool_usage

    pools = []
    for listed in views.pools():
        pool = views.pool(listed["name"])
        pool["usage"] = pool_usage(pool["name"]) if pool.get("state") == "ACTIVE" else None
        pools.append(pool)
    return {"pools": pools}


def pools_page(request: Any) -> Any:
    return _live(request, "pools.html", "pools", "pools", pools_context())


def jobs_page(request: Any) -> Any:
    from shoal.jobs.status import JobStatus

    q = request.query_params
    status, pool, name = q.get("status") or None, q.get("pool") or None, q.get("name") or None
    return _render(
        request,
        "jobs.html",
        "jobs",
        jobs=views.jobs(status=status, pool_name=pool, name=name),
        statuses=[s.value for s in JobStatus],
        status=status,
        pool=pool,
        name=name,
    )


def job_context(job_id: str, params: Any) -> dict[str, Any]:
    """A job's page: its status document, one instance's log (``?instance=``) and its result."""
    raw = params.get("instance", "0")
    instance = int(raw) if raw.isdigit() else 0
    return {
        "job": views.job(job_id),
        "instance": instance,
        "logs": views.job_logs(job_id, instance),
        "result": views.job_result(job_id),
    }


def job_page(request: Any) -> Any:
    context = job_context(request.path_params["id"], request.query_params)
    return _live(request, "job.html", "jobs", "job", context)


def runs_page(request: Any) -> Any:
    from shoal.stages import list_stages

    stages = []
    for info in list_stages():
        found = views.runs(info.name)
        if found:
            stages.append((info.name, found))
    return _render(request, "runs.html", "runs", stages=stages)


def run_context(stage: str, run_id: str, params: Any) -> dict[str, Any]:
    """A run's page: its summary and one page of its partitions (``?status=&sort=&desc=&offset=``)."""
    sort = params.get("sort") or "partition_id"
    desc = params.get("desc", "") in ("1", "true")
    status = params.get("status") or None
    raw_offset = params.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    run, page = views.run_and_partitions(
        stage, run_id, status=status, sort=sort, descending=desc, offset=offset, limit=PAGE_SIZE
    )

    def query(**changes: Any) -> str:
        current = {"status": status or "", "sort": sort, "desc": int(desc), "offset": offset}
        current.update(changes)
        return urlencode({k: v for k, v in current.items() if v not in ("", None)})

    return {"run": run, "page": page, "sort": sort, "desc": desc, "status": status, "query": query}


def run_page(request: Any) -> Any:
    stage, run_id = request.path_params["stage"], request.path_params["run"]
    context = run_context(stage, run_id, request.query_params)
    return _live(request, "run.html", "runs", "run", context)


def partition_page(request: Any) -> Any:
    p = request.path_params
    stage, run_id, partition_id = p["stage"], p["run"], p["partition"]
    partition = views.partition(stage, run_id, partition_id)
    try:
        log = views.partition_log(stage, run_id, partition_id)
    except views.NotFound as exc:
        log = str(exc)
    return _render(
        request, "partition.html", "runs", stage=stage, run_id=run_id, partition=partition, log=log
    )


def models_page(request: Any) -> Any:
    stage, run_id = request.path_params["stage"], request.path_params["run"]
    return _render(
        request, "models.html", "runs", stage=stage, run_id=run_id, models=views.models(stage, run_id)
    )

"""The web view's pages: HTML over the same :mod:`shoal.ui.views` as the JSON API (``shoal ui``
process).

Rendered on the server with Jinja2 (autoescaped; the templates are in ``templates/`` inside the
package): no script, no asset from the internet, nothing to build. A run's partitions are paged,
sorted and filtered on the server, as in the API.
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


def _render(request: Any, template: str, section: str, **context: Any) -> Any:
    return templates().TemplateResponse(request, template, {"section": section, **context})


def pools_page(request: Any) -> Any:
    return _render(request, "pools.html", "pools", pools=[views.pool(p["name"]) for p in views.pools()])


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


def job_page(request: Any) -> Any:
    job_id = request.path_params["id"]
    job = views.job(job_id)
    raw = request.query_params.get("instance", "0")
    instance = int(raw) if raw.isdigit() else 0
    return _render(
        request,
        "job.html",
        "jobs",
        job=job,
        instance=instance,
        logs=views.job_logs(job_id, instance),
        result=views.job_result(job_id),
    )


def runs_page(request: Any) -> Any:
    from shoal.stages import list_stages

    stages = []
    for info in list_stages():
        found = views.runs(info.name)
        if found:
            stages.append((info.name, found))
    return _render(request, "runs.html", "runs", stages=stages)


def run_page(request: Any) -> Any:
    stage, run_id = request.path_params["stage"], request.path_params["run"]
    q = request.query_params
    sort = q.get("sort") or "partition_id"
    desc = q.get("desc", "") in ("1", "true")
    status = q.get("status") or None
    raw_offset = q.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() else 0
    run, page = views.run_and_partitions(
        stage, run_id, status=status, sort=sort, descending=desc, offset=offset, limit=PAGE_SIZE
    )

    def query(**changes: Any) -> str:
        current = {"status": status or "", "sort": sort, "desc": int(desc), "offset": offset}
        current.update(changes)
        return urlencode({k: v for k, v in current.items() if v not in ("", None)})

    return _render(
        request,
        "run.html",
        "runs",
        run=run,
        page=page,
        sort=sort,
        desc=desc,
        status=status,
        query=query,
    )


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

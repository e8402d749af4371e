"""The web view's HTTP application: its pages and the JSON API under ``/api/`` (``shoal ui``
process).

A Starlette application served by uvicorn (:func:`serve`). Each route calls one function of
:mod:`shoal.ui.views` (plain Python, in Starlette's thread pool) and answers JSON, plain text or
a file. A name that is not in the workspace is a 404, a bad query value a 400, both as
``{"error": "..."}``. Path parameters are names looked up among what exists (pools, jobs,
stages, runs, partitions, files), never joined into a path: ``..``, absolute paths and encoded
slashes name nothing and answer 404.

The live pages' streams (:data:`LIVE_ROUTES`) are async endpoints over one :class:`shoal.ui.live.Hub`
per application: every watcher of one page shares one reader.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shoal.ui import actions, live, security, views

API_ROUTES: tuple[tuple[str, str], ...] = (
    ("/api/pools", "every pool"),
    ("/api/pools/{name}", "one pool, with the jobs that have not ended on it"),
    ("/api/jobs?status=&pool=&name=&limit=", "jobs, newest first"),
    ("/api/jobs/{id}", "one job's status document"),
    ("/api/jobs/{id}/logs?instance=K", "one instance's log (text)"),
    ("/api/jobs/{id}/result", "a finished job's result, or its error and traceback"),
    ("/api/stages/{stage}/runs", "the DPF and many-model runs on a stage"),
    ("/api/stages/{stage}/runs/{run}", "one run: status, message, kind, counts"),
    (
        "/api/stages/{stage}/runs/{run}/partitions?status=&sort=&desc=&offset=&limit=",
        "a page of the run's partitions",
    ),
    ("/api/stages/{stage}/runs/{run}/partitions/{partition}", "one partition and its files"),
    ("/api/stages/{stage}/runs/{run}/partitions/{partition}/log", "its train.log (text)"),
    ("/api/stages/{stage}/runs/{run}/partitions/{partition}/files/{file}", "one of its files"),
    ("/api/stages/{stage}/runs/{run}/models", "the models of a many-model training run"),
    ("/api/live", "the live pages being watched: watchers, reads and changes of each"),
)

#: the actions: ``POST`` only, each with the view's CSRF token (:mod:`shoal.ui.security`)
ACTION_ROUTES: tuple[tuple[str, str], ...] = (
    ("/actions/jobs/{id}/cancel", "cancel a job"),
    ("/actions/stages/{stage}/runs/{run}/cancel", "cancel a run"),
    ("/actions/stages/{stage}/runs/{run}/retry", "retry a run's failed partitions as a new run"),
    ("/actions/pools/{name}/stop-idle-nodes", "stop the pool's nodes that hold no job"),
)

#: the streams of the live pages (server-sent events, each event the page's regions as JSON)
LIVE_ROUTES: tuple[str, ...] = (
    "/live/pools",
    "/live/jobs/{id}",
    "/live/stages/{stage}/runs/{run}?status=&sort=&desc=&offset=",
)


def _int(request: Any, name: str, default: int | None) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise views.BadRequest(f"{name} must be a whole number, got {raw!r}") from None


def _count(request: Any, name: str, default: int) -> int:
    value = _int(request, name, default)
    return default if value is None else value


def _endpoint(answer: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A Starlette endpoint (run in the thread pool) that turns ``answer(request)`` into a response."""
    from starlette.responses import JSONResponse, PlainTextResponse, Response

    def endpoint(request: Any) -> Any:
        try:
            value = answer(request)
        except views.NotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except views.BadRequest as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if isinstance(value, Response):
            return value
        if isinstance(value, str):
            return PlainTextResponse(value)
        return JSONResponse(value)

    return endpoint


def _names(request: Any, *keys: str) -> list[str]:
    """The request's path parameters ``keys``, in order."""
    return [str(request.path_params[key]) for key in keys]


def _file(request: Any) -> Any:
    from starlette.responses import Response

    p = request.path_params
    data = views.partition_file(p["stage"], p["run"], p["partition"], p["file"])
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": _attachment(p["file"])},
    )


def _attachment(filename: str) -> str:
    from urllib.parse import quote

    return f"attachment; filename*=UTF-8''{quote(filename, safe='')}"


def _partitions(request: Any) -> Any:
    p, q = request.path_params, request.query_params
    return views.partitions(
        p["stage"],
        p["run"],
        status=q.get("status") or None,
        sort=q.get("sort") or "partition_id",
        descending=q.get("desc", "") in ("1", "true", "yes"),
        offset=_count(request, "offset", 0),
        limit=_count(request, "limit", 100),
    )


def _page(render: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A page endpoint: ``render(request)``, or the error as a small HTML page (404, 400)."""

    def endpoint(request: Any) -> Any:
        try:
            return render(request)
        except (views.NotFound, views.BadRequest) as exc:
            return _error_page(404 if isinstance(exc, views.NotFound) else 400, str(exc))

    return endpoint


def _page_routes() -> list[Any]:
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    from shoal.ui import pages

    run = "/stages/{stage}/runs/{run}"
    return [
        Route("/", lambda request: RedirectResponse("/runs")),
        Route("/pools", _page(pages.pools_page)),
        Route("/jobs", _page(pages.jobs_page)),
        Route("/jobs/{id}", _page(pages.job_page)),
        Route("/runs", _page(pages.runs_page)),
        Route(run, _page(pages.run_page)),
        Route(run + "/models", _page(pages.models_page)),
        Route(run + "/partitions/{partition:path}", _page(pages.partition_page)),
    ]


async def _events(snapshots: Any, seen: str) -> Any:
    """Server-sent events: one ``regions`` event per snapshot, but not a first one whose
    fingerprint is ``seen`` (the page already shows it)."""
    import contextlib
    import json

    first = True
    async with contextlib.aclosing(snapshots):  # its watcher leaves as soon as this stream ends
        async for snapshot in snapshots:
            if snapshot is None:  # nothing new: a keep-alive, which fails once the browser went away
                yield ": keep-alive\n\n"
                continue
            if isinstance(snapshot, live.ReadFailed):  # shown as text, apart from the regions
                yield f"event: failure\ndata: {json.dumps(snapshot['error'])}\n\n"
            elif not (first and live.digest(snapshot) == seen):
                yield f"event: regions\ndata: {json.dumps(snapshot)}\n\n"
            first = False


def _live_routes(hub: live.Hub) -> list[Any]:
    from starlette.responses import JSONResponse, StreamingResponse
    from starlette.routing import Route

    from shoal.ui import pages

    def stream(page: str, context: Callable[[dict[str, str], dict[str, str]], dict[str, Any]]) -> Any:
        async def endpoint(request: Any) -> Any:
            path, params = dict(request.path_params), dict(request.query_params)
            seen = params.pop("seen", "")
            params.pop("token", None)
            key = (page, request.url.path, tuple(sorted(params.items())))

            csrf = request.app.state.csrf

            def read() -> Any:  # once per poll for every watcher of this key
                found = {**context(path, params), "csrf": csrf}
                regions = pages.regions(page, found)
                return live.Final(regions) if pages.settled(page, found) else regions

            return StreamingResponse(
                _events(hub.watch(key, read, live.HEARTBEAT_S), seen),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-store"},
            )

        return endpoint

    async def stats(request: Any) -> Any:
        return JSONResponse(hub.stats())

    return [
        Route("/api/live", stats),
        Route("/live/pools", stream("pools", lambda p, q: pages.pools_context())),
        Route("/live/jobs/{id}", stream("job", lambda p, q: pages.job_context(p["id"], q))),
        Route(
            "/live/stages/{stage}/runs/{run}",
            stream("run", lambda p, q: pages.run_context(p["stage"], p["run"], q)),
        ),
    ]


def _action(name: str, *keys: str) -> Callable[[Any], Any]:
    """An action's endpoint: refuse without the CSRF token or from another origin (403), run the
    action ``name`` on the path parameters ``keys`` in a process of its own
    (:func:`shoal.ui.actions.run_isolated`), answer with its outcome (a page, or JSON)."""
    import asyncio

    from starlette.responses import JSONResponse, PlainTextResponse

    async def endpoint(request: Any) -> Any:
        if not security.same_origin(request):
            return PlainTextResponse("403: an action must come from the view's own pages", status_code=403)
        if not security.same(await security.csrf_given(request), request.app.state.csrf):
            return PlainTextResponse(
                "403: an action needs the view's CSRF token: press its button on the view's own page",
                status_code=403,
            )
        wants_json = "application/json" in request.headers.get("accept", "")
        arguments = [str(request.path_params[key]) for key in keys]
        try:
            outcome = await asyncio.to_thread(actions.run_isolated, name, arguments)
        except views.NotFound as exc:
            if wants_json:
                return JSONResponse({"error": str(exc)}, status_code=404)
            return _error_page(404, str(exc))
        code = 409 if outcome.error else 200
        if wants_json:
            links = [{"text": t, "href": h} for t, h in outcome.links]
            return JSONResponse({"message": outcome.message, "error": outcome.error, "links": links}, code)
        from shoal.ui import pages

        return pages.templates().TemplateResponse(
            request,
            "outcome.html",
            {"section": "", "outcome": outcome, "csrf": request.app.state.csrf},
            status_code=code,
        )

    return endpoint


def _error_page(code: int, message: str) -> Any:
    from html import escape

    from starlette.responses import HTMLResponse

    return HTMLResponse(
        f"<!doctype html><title>{code}</title><p><a href='/runs'>shoal</a></p>"
        f"<h1>{code}</h1><p id='error'>{escape(message)}</p>",
        status_code=code,
    )


def _action_routes() -> list[Any]:
    from starlette.routing import Route

    run = "/actions/stages/{stage}/runs/{run}"
    return [
        Route("/actions/jobs/{id}/cancel", _action("cancel_job", "id"), methods=["POST"]),
        Route(run + "/cancel", _action("cancel_run", "stage", "run"), methods=["POST"]),
        Route(run + "/retry", _action("retry_run", "stage", "run"), methods=["POST"]),
        Route("/actions/pools/{name}/stop-idle-nodes", _action("stop_idle_nodes", "name"), methods=["POST"]),
    ]


def create_app(*, token: str | None = None, csrf: str | None = None) -> Any:
    """The Starlette application over this process's workspace (``SHOAL_HOME``): the pages,
    the JSON API under ``/api/``, the live streams and the actions. ``token``: required on every
    request (a bind other than loopback); ``csrf``: the actions' token (default: a new one)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    def path(name: str) -> Callable[[Any], str]:
        return lambda request: request.path_params[name]

    run = "/api/stages/{stage}/runs/{run}"
    part = run + "/partitions/{partition:path}"
    routes = [
        Route("/api/pools", _endpoint(lambda r: views.pools())),
        Route("/api/pools/{name}", _endpoint(lambda r: views.pool(path("name")(r)))),
        Route(
            "/api/jobs",
            _endpoint(
                lambda r: views.jobs(
                    status=r.query_params.get("status") or None,
                    pool_name=r.query_params.get("pool") or None,
                    name=r.query_params.get("name") or None,
                    limit=_count(r, "limit", 0),
                )
            ),
        ),
        Route("/api/jobs/{id}", _endpoint(lambda r: views.job(path("id")(r)))),
        Route(
            "/api/jobs/{id}/logs",
            _endpoint(lambda r: views.job_logs(path("id")(r), _int(r, "instance", None))),
        ),
        Route("/api/jobs/{id}/result", _endpoint(lambda r: views.job_result(path("id")(r)))),
        Route("/api/stages/{stage}/runs", _endpoint(lambda r: views.runs(path("stage")(r)))),
        Route(run, _endpoint(lambda r: views.run(*_names(r, "stage", "run")))),
        Route(run + "/models", _endpoint(lambda r: views.models(*_names(r, "stage", "run")))),
        Route(run + "/partitions", _endpoint(_partitions)),
        # a partition id may hold "/" (stage mode): the file and log routes come first
        Route(part + "/files/{file}", _endpoint(_file)),
        Route(
            part + "/log",
            _endpoint(lambda r: views.partition_log(*_names(r, "stage", "run", "partition"))),
        ),
        Route(
            part,
            _endpoint(lambda r: views.partition(*_names(r, "stage", "run", "partition"))),
        ),
    ]
    from pathlib import Path

    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    # bound to loopback, only loopback names may be asked for: a page of another site whose name
    # was pointed at 127.0.0.1 (DNS rebinding) is refused; off loopback, the token guards it
    hosts = ["*"] if token else list(security.LOOPBACK_NAMES)
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=hosts)]
    if token:
        middleware.append(Middleware(security.AccessToken, token=token))
    static = [Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")]
    app = Starlette(
        routes=_live_routes(live.Hub()) + _action_routes() + static + routes + _page_routes(),
        middleware=middleware,
    )
    app.state.csrf = csrf or security.new_token()
    return app


def serve(host: str = "127.0.0.1", port: int = 8265, token: str | None = None) -> None:
    """Serve the web view until interrupted (the ``shoal ui`` process). Served on a loopback
    address, its address is recorded for the links notebooks show (:mod:`shoal.display.webview`)."""
    import uvicorn

    from shoal.display import webview

    if token is None:
        webview.record_serving(f"http://{host}:{port}")
    try:
        uvicorn.run(create_app(token=token), host=host, port=port, log_level="warning")
    finally:
        webview.forget_serving()

"""``shoal ui``: serve the web view of this workspace (the ``shoal`` process)."""

from __future__ import annotations

import click

from shoal.cli.output import progress

#: what the web view needs beyond the core install (the ``ui`` extra)
UI_MODULES = ("starlette", "uvicorn", "jinja2")


@click.command("ui")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8265, show_default=True, type=click.IntRange(0, 65535), help="Port.")
@click.option("--open", "open_browser", is_flag=True, help="Open the view in the default browser.")
def ui(host: str, port: int, open_browser: bool) -> None:
    """Serve a web view (and its JSON API under /api/) of this workspace's pools, jobs and runs,
    live, with buttons to cancel, retry and stop idle nodes, until interrupted. Bound to an
    address other than loopback, it prints an access token that every request needs."""
    from shoal.extras import require

    require(UI_MODULES, "shoal ui")
    import socket

    from shoal.ui.app import serve
    from shoal.workspace import workspace_dir

    if port == 0:  # a free port, said on stderr before serving
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
    from shoal.ui.security import is_loopback, new_token

    url = f"http://{host}:{port}/"
    token = None if is_loopback(host) else new_token()  # reachable from elsewhere: a token
    if token is None:
        progress(f"shoal ui: serving {workspace_dir()} at {url} (JSON under {url}api/); Ctrl-C stops it")
    else:
        progress(
            f"shoal ui: serving {workspace_dir()} at {url}?token={token} (bound to {host}: every request "
            f"needs this token, shown only now; JSON under {url}api/); Ctrl-C stops it"
        )
    if open_browser:
        import webbrowser

        webbrowser.open(url if token is None else f"{url}?token={token}")
    serve(host, port, token)

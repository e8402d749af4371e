"""Who may use the web view: the access token on a bind other than loopback, and the CSRF token
that every action needs. ``shoal ui`` runs in its own process over an empty workspace; requests
go over HTTP from 127.0.0.1."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from ui_helpers import start_ui


def request(
    url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str, dict[str, str]]:
    """Status, body and headers of a GET (or of a POST with ``data``)."""
    sent = urllib.request.Request(
        url, data=data, headers=headers or {}, method="POST" if data is not None else "GET"
    )
    try:
        with urllib.request.urlopen(sent, timeout=30) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


@pytest.fixture(scope="module")
def open_to_all(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``shoal ui --host 0.0.0.0``, and the token it printed."""
    for base, process in start_ui(tmp_path_factory.mktemp("ui-open-home"), "0.0.0.0"):
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"\?token=([A-Za-z0-9_-]+) ", line)
        assert found, f"shoal ui did not print its token: {line!r}"
        yield base, found.group(1)


@pytest.fixture(scope="module")
def loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    for base, _ in start_ui(tmp_path_factory.mktemp("ui-loop-home"), "127.0.0.1"):
        yield base


def test_a_bind_other_than_loopback_needs_the_token_it_printed(open_to_all: tuple[str, str]) -> None:
    base, token = open_to_all
    for path in ("/pools", "/api/pools", "/api/live", "/live/pools", "/jobs"):
        status, body, _ = request(base + path)
        assert status == 401, path
        assert "needs its access token" in body
        assert request(base + path + "?token=wrong" + token[:5])[0] == 401, path
    status, _, headers = request(base + "/api/pools?token=" + token)
    assert status == 200
    name = f"shoal_ui_token_{base.rsplit(':', 1)[1]}"  # one cookie per port: two views never mix
    cookie = headers.get("set-cookie", "")
    assert cookie.startswith(f"{name}={token};")
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert request(base + "/pools", headers={"Cookie": f"{name}={token}"})[0] == 200
    assert request(base + "/pools", headers={"Cookie": f"{name}=" + "x" * len(token)})[0] == 401
    assert (
        request(base + "/pools", headers={"Host": "anything.example", "Cookie": f"{name}={token}"})[0] == 200
    )


def csrf_of(base: str, headers: dict[str, str] | None = None) -> str:
    status, page, _ = request(base + "/pools", headers=headers)
    assert status == 200
    found = re.search(r'<meta name="csrf-token" content="([^"]+)">', page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def test_an_action_needs_a_post_with_the_csrf_token(loopback: str) -> None:
    cancel = loopback + "/actions/jobs/no_such_job/cancel"
    assert request(cancel)[0] == 405, "an action is POST only"
    status, body, _ = request(cancel, data=b"")
    assert status == 403
    assert "needs the view's CSRF token" in body
    assert (
        request(
            cancel, data=b"csrf=not-the-token", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )[0]
        == 403
    )
    assert request(cancel, data=b"", headers={"X-CSRF-Token": "not-the-token"})[0] == 403
    csrf = csrf_of(loopback)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body, _ = request(cancel, data=f"csrf={csrf}".encode(), headers=form)
    assert status == 404, "past the CSRF check, the job is looked up"
    assert "no job &#x27;no_such_job&#x27;" in body  # escaped in the page
    status, body, _ = request(
        loopback + "/actions/pools/NOPE/stop-idle-nodes",
        data=b"",
        headers={"X-CSRF-Token": csrf, "Accept": "application/json"},
    )
    assert (status, body) == (404, '{"error":"no compute pool \'NOPE\'"}')


def test_a_loopback_bind_needs_no_access_token_but_answers_only_loopback_names(loopback: str) -> None:
    assert request(loopback + "/api/pools")[0] == 200
    port = loopback.rsplit(":", 1)[1]
    assert request(loopback + "/api/pools", headers={"Host": f"localhost:{port}"})[0] == 200
    # a site whose name was pointed at 127.0.0.1 (DNS rebinding) cannot read the view
    status, body, _ = request(loopback + "/pools", headers={"Host": f"rebound.example:{port}"})
    assert status == 400
    assert "Invalid host header" in body


def test_an_action_from_another_site_is_refused(loopback: str) -> None:
    csrf = csrf_of(loopback)
    status, body, _ = request(
        loopback + "/actions/jobs/no_such_job/cancel",
        data=b"",
        headers={"X-CSRF-Token": csrf, "Origin": "http://elsewhere.example"},
    )
    assert status == 403
    assert "must come from the view's own pages" in body
    same_site = {"X-CSRF-Token": csrf, "Origin": loopback}
    assert request(loopback + "/actions/jobs/no_such_job/cancel", data=b"", headers=same_site)[0] == 404

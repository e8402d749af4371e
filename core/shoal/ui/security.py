"""Who may use the web view, and that its buttons are pressed on its own pages (``shoal ui`` process).

* **Access token.** Bound to any address but loopback, the view needs a token: generated at
  start-up (:func:`new_token`), printed once by ``shoal ui`` in the URL it serves
  (``?token=...``), and required on every request, from the query or, after the first visit, from
  the ``HttpOnly``, ``SameSite=Strict`` cookie the server sets then (``shoal_ui_token_<port>``).
  A request without it, or with a wrong one, gets 401. Tokens are compared in constant time
  (``hmac.compare_digest``).
* **CSRF token.** Every action is a ``POST`` that carries the server's CSRF token (a form field
  ``csrf``, or the ``X-CSRF-Token`` header); pages put it in their forms. A ``POST`` without it or
  with another gets 403. Another site's page can send a ``POST`` to the view but cannot read a
  page of it to learn the token, so it cannot act, also on a loopback bind with no access token.
  A ``POST`` whose ``Origin`` is another site is refused too, and a view bound to loopback answers
  only loopback ``Host`` names, so a site whose name was pointed at 127.0.0.1 (DNS rebinding)
  cannot read its pages either.

:class:`AccessToken` is plain ASGI middleware, so the live pages' streams pass through it
untouched.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

COOKIE = "shoal_ui_token"
#: the only ``Host`` names a view bound to loopback answers (DNS rebinding is refused)
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``: addresses only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cookie_name(scope: Scope) -> str:
    """The token's cookie, one per port: cookies are not kept apart by port, two views are."""
    server = scope.get("server") or ("", 0)
    return f"{COOKIE}_{server[1]}"


def same_origin(request: Any) -> bool:
    """A ``POST`` whose ``Origin`` (sent by browsers) names this server, or that has none."""
    from urllib.parse import urlsplit

    origin = request.headers.get("origin")
    if not origin:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def same(given: str | None, expected: str) -> bool:
    """``given`` is ``expected``, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


class AccessToken:
    """ASGI middleware: every HTTP request carries ``token`` (query or cookie), else 401."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse

        request = Request(scope)
        in_query = request.query_params.get("token")
        cookie_key = cookie_name(scope)
        if not same(in_query if in_query is not None else request.cookies.get(cookie_key), self.token):
            refused = PlainTextResponse(
                "401: this view needs its access token; open the URL that shoal ui printed when it "
                "started (it ends with ?token=...)",
                status_code=401,
            )
            await refused(scope, receive, send)
            return
        if in_query is None:
            await self.app(scope, receive, send)
            return
        cookie = f"{cookie_key}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
            await send(message)

        await self.app(scope, receive, send_with_cookie)


async def csrf_given(request: Any) -> str | None:
    """The CSRF token a ``POST`` carries: its ``X-CSRF-Token`` header, else its form's ``csrf``."""
    from urllib.parse import parse_qs

    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return str(header)
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    fields = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    values = fields.get(CSRF_FIELD)
    return values[0] if values else None

"""Calling an in-process ASGI app directly: one request, its whole answer, no HTTP client in between.

Replay POSTs every step to the app in its own process (and the app's Twilio
SDK calls the local Twilio API the same way). Through ``httpx.AsyncClient``
and its ``ASGITransport`` each request also paid for httpx's URL merging,
cookie jar, auth and redirect handling and stream wrappers: about a third of
a webhook step's CPU outside the app, and much of the garbage the collector
walked. :func:`call_app` builds the ASGI scope the way ``ASGITransport``
does and collects the answer; :class:`AppClient` is an ``httpx.AsyncClient``
whose ``post`` takes that path, so code written for httpx works unchanged.

Example::

    http = AppClient(app, base_url="http://replay.internal")
    response = await http.post("/twilio/messages", content=body, headers=headers)
    response.status_code, response.text
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
from starlette.types import ASGIApp, Message

_CLIENT = ("127.0.0.1", 123)  # what httpx's ASGITransport reports as the peer


async def call_app(
    app: ASGIApp,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> httpx.Response:
    """One request to ``app``; ``url`` is absolute (its host is the ``Host`` header).

    The scope and the ``receive`` channel are those of ``httpx.ASGITransport``:
    the body in one message, then ``http.disconnect`` only once the answer is
    complete. Exceptions from the app propagate, as there.

    Example::

        response = await call_app(app, "POST", "http://bot/twilio/messages", body=b"Body=hi",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    """
    parts = urlsplit(url)
    raw: list[tuple[bytes, bytes]] = [
        (b"host", parts.netloc.encode("ascii")),
        (b"accept", b"*/*"),
        (b"accept-encoding", b"gzip, deflate"),
        (b"connection", b"keep-alive"),
        (b"user-agent", b"python-httpx/" + httpx.__version__.encode("ascii")),
    ]
    given = {name.lower() for name in headers or ()}
    raw = [(name, value) for name, value in raw if name.decode() not in given]
    raw.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in (headers or {}).items())
    if body or method not in ("GET", "HEAD", "OPTIONS"):
        raw.append((b"content-length", str(len(body)).encode("ascii")))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "headers": raw,
        "scheme": parts.scheme,
        "path": unquote(parts.path),
        "raw_path": parts.path.encode("ascii"),
        "query_string": parts.query.encode("ascii"),
        "server": (parts.hostname or "", parts.port),  # no port when the scheme's default, as httpx
        "client": _CLIENT,
        "root_path": "",
    }
    sent_body = False
    complete = asyncio.Event()
    status = 500
    response_headers: list[tuple[bytes, bytes]] = []
    chunks: list[bytes] = []

    async def receive() -> Message:
        nonlocal sent_body
        if sent_body:
            await complete.wait()
            return {"type": "http.disconnect"}
        sent_body = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = list(message.get("headers", ()))
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                complete.set()

    try:
        await app(scope, receive, send)
    finally:
        complete.set()
    return httpx.Response(status, headers=response_headers, content=b"".join(chunks))


class AppClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` for an in-process app whose ``post`` calls it directly.

    ``post(url, content=..., headers=...)``, the one form replay, the
    webhook client and the simulated call use, goes through
    :func:`call_app`; every other request (and ``post`` with ``data=``,
    ``json=``, ``params=`` ...) through ``httpx.ASGITransport`` as before.

    Example::

        http = AppClient(app, base_url="http://replay.internal")
        await http.post("/twilio/status", content=b"MessageStatus=delivered", headers=signed)
    """

    def __init__(self, app: ASGIApp, *, base_url: str) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url=base_url)
        self.app = app
        self._base = base_url.rstrip("/")

    async def post(  # type: ignore[override]
        self,
        url: httpx.URL | str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if kwargs or not isinstance(url, str) or not isinstance(content, bytes | None):
            return await super().post(url, content=content, headers=headers, **kwargs)
        absolute = url if "://" in url else self._base + url
        return await call_app(self.app, "POST", absolute, headers=headers, body=content or b"")

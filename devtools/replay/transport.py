"""The official ``twilio`` SDK talking to the in-process local Twilio API.

Example::

    http = SimulatorHttpClient(create_simulator_app(sim, close_on_shutdown=False))
    client = Client(sid, token, http_client=http)
"""

from __future__ import annotations

import functools
import logging
from base64 import b64encode
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse

from devtools.replay.asgi import call_app

log = logging.getLogger("devtools.replay")



class SimulatorHttpClient(AsyncHttpClient):  # type: ignore[misc]
    """An async HTTP client for the official ``twilio`` SDK that calls an ASGI app in-process.

    Whatever host the SDK addresses, the request goes to ``app`` (the local
    Twilio API of :mod:`devtools.simulator`), so the SDK's own request building,
    authentication and response parsing all run for real.

    Example::

        sim = Simulator(account_sid=sid, auth_token=token)
        http = SimulatorHttpClient(create_simulator_app(sim, close_on_shutdown=False))
        client = Client(sid, token, http_client=http)
        await client.messages.create_async(to="+14155550123", from_="+15005550006", body="Hi")
        await http.close()
    """

    def __init__(self, app: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        super().__init__(log, True, None)
        if (app is None) == (factory is None):
            raise ValueError("give either app or factory")
        # A factory defers building the app to the first request: most
        # replayed conversations never call the REST API.
        self._app = app
        self._factory = factory

    @property
    def app(self) -> Any:
        """The local Twilio API's ASGI app (built on first use)."""
        if self._app is None:
            assert self._factory is not None
            self._app = self._factory()
        return self._app

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one SDK request to the app; returns the SDK's own response type.

        The request is what ``httpx`` would send for these arguments (query
        parameters, a url-encoded form, basic auth), handed to the app
        directly (:func:`devtools.replay.asgi.call_app`).
        """
        sent = dict(headers or {})
        if auth is not None:
            sent["Authorization"] = "Basic " + b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        body = b""
        if data:
            body = urlencode(_form_pairs(data)).encode("ascii")
            if not any(name.lower() == "content-type" for name in sent):
                sent["Content-Type"] = "application/x-www-form-urlencoded"
        if params:
            url += ("&" if "?" in url else "?") + urlencode(_form_pairs(params), quote_via=quote)
        response = await call_app(self.app, method.upper(), url, headers=sent, body=body)
        return TwilioResponse(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        """Nothing to close: requests go to the app directly."""


def _form_pairs(values: dict[str, object]) -> list[tuple[str, str]]:
    # As httpx encodes data= and params=: a list repeats its key; True/False/None are "true"/"false"/"".
    pairs: list[tuple[str, str]] = []
    for key, value in values.items():
        for item in value if isinstance(value, list | tuple) else (value,):
            text = "true" if item is True else "false" if item is False else "" if item is None else str(item)
            pairs.append((key, text))
    return pairs


class AbsorbedCallbacks(httpx.AsyncClient):
    """The simulator's client for status callbacks in replay: every POST is answered 204, unsent.

    The simulator plays every message's status lifecycle; in replay the bot
    hears about statuses only through explicit ``status:`` steps, so the
    callbacks go nowhere. Building each request only to drop it was about 4 %
    of a replay's CPU.

    Example::

        Simulator(account_sid=sid, auth_token=token, http_client=AbsorbedCallbacks())
    """

    def __init__(self) -> None:
        super().__init__(transport=httpx.MockTransport(lambda request: httpx.Response(204)))

    async def post(self, url: httpx.URL | str, *args: Any, **kwargs: Any) -> httpx.Response:
        return httpx.Response(204)

    async def aclose(self) -> None:
        """Nothing to close (the client is shared, :func:`absorbed_callbacks`)."""


@functools.cache
def absorbed_callbacks() -> AbsorbedCallbacks:
    """The one :class:`AbsorbedCallbacks` of the process: it holds nothing, so every simulator can share it.

    Building an ``httpx.AsyncClient`` per replayed conversation was about 5 %
    of setting one up.
    """
    return AbsorbedCallbacks()

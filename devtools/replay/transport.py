"""The official ``twilio`` SDK talking to the in-process local Twilio API.

Example::

    http = SimulatorHttpClient(create_simulator_app(sim, close_on_shutdown=False))
    client = Client(sid, token, http_client=http)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import httpx
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse

from devtools.replay.config import TWILIO_API_URL

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
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The in-process HTTP client (built on first use)."""
        if self._client is None:
            app = self._app if self._factory is None else self._factory()
            self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TWILIO_API_URL)
        return self._client

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
        """Send one SDK request to the app; returns the SDK's own response type."""
        response = await self.client.request(
            method.upper(),
            url,
            params=cast(Any, params),
            data=cast(Any, data),
            headers=headers,
            auth=auth,
            follow_redirects=allow_redirects,
        )
        return TwilioResponse(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        """Close the in-process HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


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

"""One simulator app per process, serving whichever :class:`Simulator` the request is for.

Building :func:`devtools.simulator.api.create_simulator_app` costs ~100 ms
(FastAPI analyses every route's parameters). Transcript replay gives each
conversation its own simulator, so it would pay that once per conversation
that calls the REST API. Here the app is built once, around a stand-in that
forwards every attribute to the simulator of the request in progress (a
context variable, set by the small ASGI app :func:`simulator_app_for` returns).
The endpoints therefore behave exactly as in an app of their own.

Example::

    sim = Simulator(account_sid=sid, auth_token=token)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator_app_for(sim)))
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send

from devtools.simulator.api import create_simulator_app
from devtools.simulator.state import Simulator

_CURRENT: ContextVar[Simulator] = ContextVar("simulator")


class _CurrentSimulator:
    """Every attribute read or set is the current request's simulator's."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_CURRENT.get(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_CURRENT.get(), name, value)


class _Shared:
    app: ASGIApp | None = None


def simulator_app_for(sim: Simulator) -> ASGIApp:
    """An ASGI app serving ``sim`` like ``create_simulator_app(sim, close_on_shutdown=False)``.

    Without a lifespan: closing ``sim`` stays with its owner.
    """
    if _Shared.app is None:
        _Shared.app = create_simulator_app(cast(Simulator, _CurrentSimulator()), close_on_shutdown=False)
    shared = _Shared.app

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        token = _CURRENT.set(sim)
        try:
            await shared(scope, receive, send)
        finally:
            _CURRENT.reset(token)

    return app

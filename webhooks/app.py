"""The app factory: ``create_app(settings)`` builds one self-contained app.

No module-level app or settings: every instance owns its store, metrics,
templates and engine, so tests can run two apps against one Redis.

Example::

    app = create_app(load_settings())
    uvicorn.run(app)
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Unpack

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.errors import BadRequestError, SignatureError
from bot.observability import Metrics
from bot.runtime import RuntimeParts
from bot.settings import Settings
from webhooks import health, messages, status, voice
from webhooks.services import Services

log = logging.getLogger("webhooks.app")


def create_app(settings: Settings, **parts: Unpack[RuntimeParts]) -> FastAPI:
    """Build the FastAPI app for ``settings``.

    Any of :class:`~bot.runtime.RuntimeParts` (``store``, ``clock``,
    ``handler``, ``chat_model``, ``twilio``, ``outbox``) may be injected
    (tests, replay with a frozen clock and a scripted model); by default each
    is built from ``settings``.

    Example::

        app = create_app(settings)
        app = create_app(settings, store=MemoryStore(), clock=FrozenClock(start))
    """
    services = Services.build(settings, **parts)
    metrics = services.metrics

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await services.open()
        try:
            yield
        finally:
            if services.background:
                # Let late turns finish; whatever does not is re-run by the
                # recovery job the webhook queued for it.
                await asyncio.wait(services.background, timeout=10)
            await services.aclose()

    # No schema or API explorer in production: they map the attack surface for nobody's benefit.
    public_docs = settings.environment != "production"
    app = FastAPI(
        title="SMS & WhatsApp bot", lifespan=lifespan,
        openapi_url="/openapi.json" if public_docs else None,
        docs_url="/docs" if public_docs else None,
        redoc_url="/redoc" if public_docs else None,
    )
    app.state.services = services
    app.include_router(messages.router)
    app.include_router(status.router)
    app.include_router(voice.router)
    app.include_router(health.router)

    async def _bad_request(request: Request, exc: BadRequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status_code)

    async def _forged(request: Request, exc: SignatureError) -> JSONResponse:
        metrics.errors.labels("signature").inc()
        log.warning("signature rejected", extra={"fields": {"path": request.url.path}})
        return JSONResponse({"detail": str(exc)}, status_code=403)

    app.add_exception_handler(BadRequestError, _bad_request)  # type: ignore[arg-type]
    app.add_exception_handler(SignatureError, _forged)  # type: ignore[arg-type]
    # Added last, so it runs first: outside the fast path, timing it too.
    app.add_middleware(_WebhookFastPath, bad_request=_bad_request, forged=_forged)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)
    return app


class _WebhookFastPath:
    """``POST /twilio/messages`` straight to its handler, past FastAPI's router.

    The inbound webhook is the one hot endpoint. Routing it through FastAPI
    (route matching over the included routers, the exception and exit-stack
    middlewares, the request/response wrapper, dependency solving) cost about
    a sixth of its CPU in profiles (bench/README.md). The handler and the
    error answers are the same functions the router uses; every other path,
    and this one under a ``root_path``, goes through FastAPI as usual.
    """

    def __init__(
        self,
        app: ASGIApp,
        bad_request: Callable[[Request, BadRequestError], Awaitable[Response]],
        forged: Callable[[Request, SignatureError], Awaitable[Response]],
    ) -> None:
        self.app = app
        self.bad_request = bad_request
        self.forged = forged

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in _WEBHOOK_PATHS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        response: Response
        try:
            response = await messages.inbound_message(request)
        except BadRequestError as exc:
            response = await self.bad_request(request, exc)
        except SignatureError as exc:
            response = await self.forged(request, exc)
        await response(scope, receive, send)


_WEBHOOK_PATHS = frozenset({"/twilio/messages", "/twilio/inbound"})


class _MetricsMiddleware:
    """Counts requests and times them (pure ASGI: no per-request task overhead)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = scope.get("path", "")
            endpoint = path if path in _ENDPOINTS else "other"
            self.metrics.requests.labels(endpoint, str(status)).inc()
            self.metrics.latency.labels(endpoint).observe(time.perf_counter() - started)


_ENDPOINTS = frozenset({
    "/twilio/messages", "/twilio/inbound", "/twilio/status", "/healthz", "/readyz", "/metrics",
    "/twilio/voice", "/twilio/voice/turn", "/twilio/voice/result", "/twilio/voice/dial",
    "/twilio/voice/followup", "/twilio/voice/status",
})


def settle_heap() -> None:
    """Move everything built at start-up out of the garbage collector's sight.

    The app holds a few hundred thousand long-lived objects (the classifier,
    dateparser's language data, compiled templates). Without this, every
    full (generation 2) collection walks them all: 50-150 ms with the event
    loop stopped, every few thousand requests -- the slowest 1 % of answers.
    ``gc.freeze`` parks them in the permanent generation, so collections only
    look at objects made since. Call it once, in a server process, after the
    app is built (not in tests: frozen objects are never freed).
    """
    gc.collect()
    gc.freeze()


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings from the environment."""
    from bot.observability import configure_logging
    from bot.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    app = create_app(settings)
    settle_heap()
    return app

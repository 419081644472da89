"""The app factory: ``create_app(settings)`` builds one self-contained app.

No module-level app or settings: every instance owns its store, metrics,
templates and engine, so tests can run two apps against one Redis.

Example::

    app = create_app(load_settings())
    uvicorn.run(app)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import fields
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.clock import Clock
from bot.engine import TurnHandler
from bot.errors import BadRequestError, SignatureError
from bot.observability import Metrics
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.storage import ConversationStore
from webhooks import health, messages, status
from webhooks.services import Services
from webhooks.signature import SignatureChecker

log = logging.getLogger("webhooks.app")


def create_app(
    settings: Settings,
    *,
    store: ConversationStore | None = None,
    clock: Clock | None = None,
    handler: TurnHandler | None = None,
    chat_model: Any = None,
    twilio: Any = None,
) -> FastAPI:
    """Build the FastAPI app for ``settings``.

    ``store``, ``clock``, ``handler``, ``chat_model`` and ``twilio`` may be
    injected (tests, replay with a frozen clock and a scripted model); by
    default they are built from ``settings``. See :func:`bot.runtime.build_runtime`.
    """
    runtime = build_runtime(
        settings, store=store, clock=clock, handler=handler, chat_model=chat_model, twilio=twilio
    )
    services = Services(
        **{f.name: getattr(runtime, f.name) for f in fields(Runtime)},
        signatures=SignatureChecker(
            settings.twilio_auth_token.get_secret_value(), settings.public_base_url
        ),
    )
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

    app = FastAPI(title="SMS & WhatsApp bot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    app.include_router(messages.router)
    app.include_router(status.router)
    app.include_router(health.router)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    @app.exception_handler(BadRequestError)
    async def _bad_request(request: Request, exc: BadRequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status_code)

    @app.exception_handler(SignatureError)
    async def _forged(request: Request, exc: SignatureError) -> JSONResponse:
        metrics.errors.labels("signature").inc()
        log.warning("signature rejected", extra={"fields": {"path": request.url.path}})
        return JSONResponse({"detail": str(exc)}, status_code=403)

    return app


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


_ENDPOINTS = frozenset(
    {"/twilio/messages", "/twilio/inbound", "/twilio/status", "/healthz", "/readyz", "/metrics"}
)


def app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (several workers): settings from the environment."""
    from bot.observability import configure_logging
    from bot.settings import load_settings

    settings = load_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    return create_app(settings)

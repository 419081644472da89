"""The app factory: ``create_app(settings)`` builds one self-contained app.

No module-level app or settings: every instance owns its store, metrics,
templates and engine, so tests can run two apps against one Redis.

Example::

    app = create_app(load_settings())
    uvicorn.run(app)
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.brain import build_handler
from bot.clock import Clock, SystemClock
from bot.compliance import Compliance
from bot.engine import Engine, TurnHandler
from bot.errors import BadRequestError, SignatureError
from bot.observability import Metrics
from bot.settings import Settings
from bot.storage import ConversationStore, MemoryStore, RedisStore
from bot.templates import ReplyTemplates
from webhooks import health, messages
from webhooks.services import Services
from webhooks.signature import SignatureChecker

log = logging.getLogger("webhooks.app")


def build_store(settings: Settings) -> ConversationStore:
    """Redis when ``REDIS_URL`` is set, else the in-memory store (dev only)."""
    if settings.redis_url:
        return RedisStore.from_url(settings.redis_url)
    return MemoryStore()


def create_app(
    settings: Settings,
    *,
    store: ConversationStore | None = None,
    clock: Clock | None = None,
    handler: TurnHandler | None = None,
) -> FastAPI:
    """Build the FastAPI app for ``settings``.

    ``store``, ``clock`` and ``handler`` may be injected (tests, replay with a
    frozen clock); by default they are built from ``settings``.
    """
    store = store or build_store(settings)
    clock = clock or SystemClock()
    metrics = Metrics()
    templates = ReplyTemplates(Path(settings.prompts_dir))
    handler = handler or build_handler(settings, templates=templates, clock=clock, store=store)
    compliance = Compliance(
        templates,
        keyword_replies=settings.sms_keyword_replies,
        context=getattr(handler, "template_context", {}),
    )
    engine = Engine(
        store=store, clock=clock, compliance=compliance, handler=handler,
        settings=settings, metrics=metrics,
    )
    services = Services(
        settings=settings, store=store, clock=clock, metrics=metrics, templates=templates,
        engine=engine,
        signatures=SignatureChecker(
            settings.twilio_auth_token.get_secret_value(), settings.public_base_url
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _announce(settings, store)
        services.twilio = _open_twilio(settings)
        try:
            yield
        finally:
            await _close_twilio(services.twilio)
            await store.close()

    app = FastAPI(title="SMS & WhatsApp bot", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.services = services
    app.include_router(messages.router)
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


def _announce(settings: Settings, store: ConversationStore) -> None:
    if isinstance(store, MemoryStore):
        log.warning(
            "REDIS_URL is not set: using the in-memory store (one process, development only; "
            "nothing survives a restart)"
        )
    if settings.twilio_skip_signature_check:
        log.warning(
            "!!! TWILIO_SKIP_SIGNATURE_CHECK is on: webhooks are NOT authenticated. "
            "Development only. !!!"
        )


def _open_twilio(settings: Settings) -> Any:
    # The official SDK's async client; the base URL points it at the local
    # simulator in development.
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=AsyncTwilioHttpClient(timeout=10),
    )
    if settings.twilio_api_base_url:
        client.api.base_url = settings.twilio_api_base_url
    return client


async def _close_twilio(client: Any) -> None:
    session = getattr(getattr(client, "http_client", None), "session", None)
    if session is not None:
        await session.close()


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

"""The object graph of one process, built from ``Settings``.

The web app (``webhooks.app.create_app``), the worker (``bot worker``) and
the replay runner all build the same :class:`Runtime`, so a turn runs the
same way wherever it runs.

Example::

    runtime = build_runtime(settings)
    await runtime.aclose()
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.brain import build_handler
from bot.clock import Clock, SystemClock
from bot.compliance import Compliance
from bot.engine import Engine, TurnHandler
from bot.memo import fingerprint, memo
from bot.observability import Metrics
from bot.outbound.outbox import Outbox, rest_deliverer
from bot.outbound.service import Outbound, build_outbound
from bot.settings import Settings
from bot.storage import ConversationStore, MemoryStore, RedisStore
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.runtime")


@dataclass
class Runtime:
    """Everything one process needs to run turns and send messages."""

    settings: Settings
    store: ConversationStore
    clock: Clock
    metrics: Metrics
    templates: ReplyTemplates
    handler: TurnHandler
    engine: Engine
    # The official Twilio REST client (async); opened by :meth:`open`.
    twilio: Any = None
    # Scheduled jobs by name (``run: reminders`` in transcripts, the worker's cron).
    jobs: dict[str, Callable[[], Awaitable[Any]]] = field(default_factory=dict)
    # Features register their parts here explicitly by name (see docs/architecture.md).
    extras: dict[str, Any] = field(default_factory=dict)
    # Sender, outbox, content templates, delivery tracking (docs/outbound.md).
    outbound: Outbound | None = None

    def require_outbound(self) -> Outbound:
        """The outbound parts; ``build_runtime`` always sets them."""
        if self.outbound is None:
            raise RuntimeError("this Runtime has no outbound parts (build it with build_runtime)")
        return self.outbound

    async def open(self) -> None:
        """Open network clients; called by the app's lifespan or the worker."""
        if isinstance(self.store, MemoryStore):
            log.warning(
                "REDIS_URL is not set: using the in-memory store (one process, development only; "
                "nothing survives a restart)"
            )
        if self.settings.twilio_skip_signature_check:
            log.warning(
                "!!! TWILIO_SKIP_SIGNATURE_CHECK is on: webhooks are NOT authenticated. "
                "Development only. !!!"
            )
        if self.twilio is None:
            self.twilio = open_twilio(self.settings)
        if self.outbound is not None:
            self.outbound.open(self.twilio)

    async def aclose(self) -> None:
        if self.outbound is not None:
            await self.outbound.aclose()
        session = getattr(getattr(self.twilio, "http_client", None), "session", None)
        if session is not None:
            await session.close()
        self.twilio = None
        await self.store.close()


def build_store(settings: Settings) -> ConversationStore:
    """Redis when ``REDIS_URL`` is set, else the in-memory store (dev only)."""
    if settings.redis_url:
        return RedisStore.from_url(settings.redis_url)
    return MemoryStore()


def open_twilio(settings: Settings) -> Any:
    """The official SDK's client on its async HTTP client.

    ``TWILIO_API_BASE_URL`` points the Messages API elsewhere (the local simulator).
    """
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


def build_runtime(
    settings: Settings,
    *,
    store: ConversationStore | None = None,
    clock: Clock | None = None,
    handler: TurnHandler | None = None,
    chat_model: Any = None,
    twilio: Any = None,
    outbox: Outbox | None = None,
) -> Runtime:
    """Build a :class:`Runtime`.

    ``store``, ``clock``, ``handler``, ``chat_model`` (a LangChain chat model,
    e.g. a scripted fake in replay) and ``twilio`` (a ``twilio.rest.Client``)
    may be injected; by default they are built from ``settings``. ``outbox``
    replaces the default (arq with ``REDIS_URL``, in-process tasks without).
    """
    store = store or build_store(settings)
    clock = clock or SystemClock()
    metrics = Metrics()
    prompts = Path(settings.prompts_dir)
    templates = memo(("replies", fingerprint(prompts)), lambda: ReplyTemplates(prompts))
    handler = handler or build_handler(
        settings, templates=templates, clock=clock, store=store, chat_model=chat_model
    )
    compliance = Compliance(
        templates,
        keyword_replies=settings.sms_keyword_replies,
        context=getattr(handler, "template_context", {}),
    )
    engine = Engine(
        store=store, clock=clock, compliance=compliance, handler=handler,
        settings=settings, metrics=metrics,
    )
    runtime = Runtime(
        settings=settings, store=store, clock=clock, metrics=metrics, templates=templates,
        handler=handler, engine=engine, twilio=twilio,
    )
    outbound = runtime.outbound = build_outbound(runtime, outbox=outbox)
    # The webhook's late-reply path and WhatsApp buttons (webhooks/messages.py).
    runtime.extras["outbox"] = outbound.outbox
    runtime.extras["rest_deliver"] = rest_deliverer(runtime)
    runtime.jobs["reminders"] = outbound.reminders.run
    return runtime

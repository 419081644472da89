"""Fixtures for outbound: the simulated Twilio (through the official SDK), the bot, a real Redis.

The simulator is served by uvicorn in the test's own event loop, wrapped in
:mod:`devtools.simulator.faults` for HTTP-level failures; the bot talks to it
through ``twilio.rest.Client`` on ``AsyncTwilioHttpClient``, exactly as in
production. The simulator's own HTTP (inbound webhooks, status callbacks)
goes in-process to the bot app once a test builds one (:attr:`Twilio.bot`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.clock import FrozenClock
from bot.engine import TurnContext
from bot.messages import Channel, Choice, Reply, TurnResult
from bot.outbound.templates import ContentTemplates
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.storage import ConversationKey, ConversationState, RedisStore
from devtools.simulator import Simulator, SimulatorConfig, create_simulator_app
from devtools.simulator.content import register_content_templates
from devtools.simulator.faults import ApiFaults, with_api_faults
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PUBLIC_URL
from tests.devtools.simulator.conftest import serve_in_loop
from webhooks.app import create_app

ROOT = Path(__file__).parents[3]
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
USER = "+14155550123"
SMS_KEY = ConversationKey(Channel.SMS, BOT_NUMBER, USER)
WA_KEY = ConversationKey(Channel.WHATSAPP, BOT_NUMBER, USER)
# Deprecations inside libraries, attributed to their callers' frames, so the
# project-wide aiohttp filter misses them: twilio 9.13's async client passes
# aiohttp's deprecated BasicAuth ``auth=``; arq 0.28 closes redis with ``close()``.
THIRD_PARTY_WARNINGS = (
    "ignore:BasicAuth is deprecated:DeprecationWarning",
    "ignore:The 'auth' parameter is deprecated:DeprecationWarning",
    "ignore:Call to deprecated close:DeprecationWarning",
)


class Echo:
    """A fast turn handler (the Brain is not under test here): echoes, counts runs."""

    def __init__(self, delay: float = 0.0, choices: tuple[Choice, ...] = ()) -> None:
        self.delay = delay
        self.choices = choices
        self.runs: list[str] = []
        self.template_context: dict[str, Any] = {"business": {"name": "Test Clinic", "phone": "+1 555 010 0199"}}

    async def handle(self, ctx: TurnContext) -> TurnResult:
        self.runs.append(ctx.message.body)
        if self.delay:
            await asyncio.sleep(self.delay)
        return TurnResult(replies=(Reply(text=f"echo: {ctx.message.body}", choices=self.choices),), intent="echo")


class AppSlot:
    """An ASGI app filled in later: the simulator's HTTP reaches the bot built after it."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


@dataclass
class Twilio:
    """The simulated Twilio as a test sees it."""

    sim: Simulator
    faults: ApiFaults
    url: str
    client: Client
    slot: AppSlot
    extra_clients: list[AsyncTwilioHttpClient] = field(default_factory=list)

    def sdk_client(self, *, timeout: float | None = None, base_url: str | None = None) -> Client:
        """Another official client (e.g. with a short timeout) on this simulator."""
        http = AsyncTwilioHttpClient(timeout=timeout)
        self.extra_clients.append(http)
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        client.api.base_url = base_url or self.url
        return client

    def sent(self, to: str | None = None) -> list[Any]:
        """Messages the bot created (outbound-api), oldest first."""
        return [m for m in self.sim.messages()
                if m.direction == "outbound-api" and (to is None or m.user == to)]

    def bot(self, app: FastAPI) -> None:
        """Route the simulator's webhooks and status callbacks to ``app``."""
        self.slot.app = app


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def registry() -> ContentTemplates:
    return ContentTemplates.load(ROOT / "intents" / "templates.yaml")


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(step_delay=0)


@pytest.fixture
async def twilio(clock: FrozenClock, registry: ContentTemplates, sim_config: SimulatorConfig) -> AsyncIterator[Twilio]:
    slot = AppSlot()
    sim = Simulator(
        account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, clock=clock, config=sim_config, seed=11,
        webhook_url=f"{PUBLIC_URL}/twilio/messages",
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=slot)),
    )
    register_content_templates(sim, registry)
    faults = ApiFaults()
    app = with_api_faults(create_simulator_app(sim, close_on_shutdown=False), faults)
    async with serve_in_loop(app) as url:
        http = AsyncTwilioHttpClient(timeout=5)
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        client.api.base_url = url
        tw = Twilio(sim=sim, faults=faults, url=url, client=client, slot=slot)
        try:
            yield tw
        finally:
            await sim.drain()
            for extra in tw.extra_clients:
                await extra.close()
            await http.close()
    await sim.aclose()
    await sim.http.aclose()


@pytest.fixture
def make_runtime(
    make_settings: Callable[..., Settings], redis_store: RedisStore, clock: FrozenClock, twilio: Twilio
) -> Callable[..., Runtime]:
    """A runtime on the real Redis store, the frozen clock and the simulator.

    Without ``redis_url`` its outbox is in-process (``InlineOutbox``).
    """

    def make(*, store: Any = None, client: Any = None, handler: Any = None, quiet_hours: bool = False,
             **overrides: Any) -> Runtime:
        # One reminder a day ahead (REMINDER_LEAD_HOURS), not business.yaml's 48 h + 3 h schedule.
        values: dict[str, Any] = {"outbound_backoff_seconds": 0.0, "reminder_lead_hours": 24.0}
        values.update(overrides)
        runtime = build_runtime(make_settings(**values), store=store or redis_store, clock=clock,
                                twilio=client or twilio.client, handler=handler or Echo())
        if not quiet_hours:
            without_quiet_hours(runtime)
        return runtime

    return make


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime()


@pytest.fixture
def make_app(
    make_settings: Callable[..., Settings], redis_store: RedisStore, clock: FrozenClock, twilio: Twilio
) -> Callable[..., FastAPI]:
    """The bot app, wired to the simulator both ways."""

    def make(**kw: Any) -> FastAPI:
        settings = kw.pop("settings", None) or make_settings(outbound_backoff_seconds=0.0)
        kw.setdefault("handler", Echo())
        quiet_hours = kw.pop("quiet_hours", False)
        app = create_app(settings, store=redis_store, clock=clock, twilio=twilio.client, **kw)
        if not quiet_hours:
            without_quiet_hours(app.state.services)
        twilio.bot(app)
        return app

    return make


def without_quiet_hours(runtime: Runtime) -> None:
    """These tests send at 4 am New York time (START) about other things; quiet hours have
    their own tests (test_held.py, which builds runtimes with ``quiet_hours=True``)."""
    outbound = runtime.outbound
    if outbound is not None:
        outbound.sender.quiet = None
        outbound.reminders.quiet = None


async def user_wrote(store: RedisStore, key: ConversationKey, at: datetime) -> None:
    """Store a conversation whose user last wrote at ``at`` (the engine stamps this)."""
    state = ConversationState.new(key)
    state.last_inbound_at = at.timestamp()
    sid = f"SMseed{at.timestamp():.0f}"  # one seed message per time: seeding twice is two messages
    start = await store.begin_turn(key, sid, "seed", lease_seconds=5)
    assert start.status.value == "acquired"
    assert await store.commit_turn(key, sid, "seed", state=state, answer="", state_ttl=7 * 24 * 3600,
                                   answer_ttl=60)

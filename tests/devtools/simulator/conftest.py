"""Fixtures for the simulator: a frozen clock, a fake bot, the simulator, its API.

The fake bot is a tiny FastAPI app that plays the bot's side: it records every
request the simulator sends (webhooks and status callbacks), checks the
``X-Twilio-Signature`` with the official validator against the public URL, and
answers with whatever TwiML a test sets.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from twilio.request_validator import RequestValidator

from bot.clock import FrozenClock
from bot.messages import Choice
from devtools.simulator import ContentTemplate, Simulator, SimulatorConfig, create_simulator_app
from tests.support.redis_server import free_port

ACCOUNT_SID = "AC" + "5e" * 16
AUTH_TOKEN = "sim-token-12345"
BOT = "+15005550006"
USER = "+14155550123"
PUBLIC = "https://bot.example.com"
WEBHOOK = f"{PUBLIC}/twilio/messages"
STATUS = f"{PUBLIC}/twilio/status"
SERVICE = "MG" + "7" * 32
REMINDER = ContentTemplate(
    sid="HX" + "1" * 32,
    name="appointment_reminder",
    body="Hi {{1}}, your cleaning is on {{2}}. Still good?",
    buttons=(Choice("confirm", "Confirm"), Choice("reschedule", "Reschedule")),
    content_type="twilio/quick-reply",
)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class Received:
    """One request the fake bot got."""

    path: str
    form: dict[str, str]
    signature: str
    valid: bool
    headers: dict[str, str]


@dataclass
class FakeBot:
    """The bot's side of the wire, programmable per test."""

    validator: RequestValidator
    received: list[Received] = field(default_factory=list)
    answer: tuple[int, str, str] = (200, "<Response/>", "text/xml")
    app: FastAPI = field(default_factory=FastAPI)

    def __post_init__(self) -> None:
        async def handle(request: Request) -> Response:
            form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
            signature = request.headers.get("x-twilio-signature", "")
            # Validate against the public URL, as the bot does behind a proxy.
            valid = self.validator.validate(PUBLIC + request.url.path, form, signature)
            self.received.append(Received(request.url.path, form, signature, bool(valid), dict(request.headers)))
            status, body, content_type = self.answer if request.url.path == "/twilio/messages" else (204, "", "")
            return Response(body, status_code=status, media_type=content_type or None)

        self.app.add_api_route("/twilio/messages", handle, methods=["POST"])
        self.app.add_api_route("/twilio/status", handle, methods=["POST"])

    def callbacks(self, sid: str | None = None) -> list[dict[str, str]]:
        """Status callbacks received, oldest first (for one message if ``sid``)."""
        return [
            r.form
            for r in self.received
            if r.path == "/twilio/status" and (sid is None or r.form.get("MessageSid") == sid)
        ]

    def statuses(self, sid: str) -> list[str]:
        return [form["MessageStatus"] for form in self.callbacks(sid)]

    def reply_with(self, twiml: str, *, status: int = 200, content_type: str = "text/xml") -> None:
        self.answer = (status, twiml, content_type)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def fake_bot() -> FakeBot:
    return FakeBot(RequestValidator(AUTH_TOKEN))


@pytest.fixture
def make_sim(fake_bot: FakeBot, clock: FrozenClock) -> Callable[..., Simulator]:
    """Build a simulator whose HTTP goes in-process to the fake bot."""

    def make(**overrides: Any) -> Simulator:
        kwargs: dict[str, Any] = {
            "account_sid": ACCOUNT_SID,
            "auth_token": AUTH_TOKEN,
            "webhook_url": WEBHOOK,
            "clock": clock,
            "http_client": httpx.AsyncClient(transport=httpx.ASGITransport(app=fake_bot.app)),
            "config": SimulatorConfig(step_delay=0),
            "templates": [REMINDER],
            "messaging_services": {SERVICE: [BOT]},
            "seed": 7,
        }
        kwargs.update(overrides)
        return Simulator(**kwargs)

    return make


@pytest.fixture
async def sim(make_sim: Callable[..., Simulator]) -> AsyncIterator[Simulator]:
    simulator = make_sim()
    yield simulator
    await simulator.aclose()
    await simulator.http.aclose()


def basic_auth(sid: str = ACCOUNT_SID, token: str = AUTH_TOKEN) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:{token}".encode()).decode()}


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """An authenticated client for the simulator's REST API, in-process."""
    app = create_simulator_app(sim, close_on_shutdown=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="https://api.twilio.test", headers=basic_auth()
    ) as client:
        yield client


def messages_path(account_sid: str = ACCOUNT_SID) -> str:
    return f"/2010-04-01/Accounts/{account_sid}/Messages.json"


@asynccontextmanager
async def serve_in_loop(app: Any) -> AsyncIterator[str]:
    """Run ``app`` under uvicorn in *this* event loop (for the async SDK).

    Unlike ``tests.support.servers.run_app`` (a thread), the simulator then
    shares the test's loop, so a test can call ``send_inbound`` directly.
    """
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn did not start")
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task

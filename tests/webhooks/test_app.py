"""The app factory: ``create_app(settings, **parts)`` injects what it is given and builds the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from bot.clock import FrozenClock
from bot.compliance.ledger import MemoryConsentLedger
from bot.engine import TurnContext
from bot.messages import InboundMessage, Reply, TurnResult
from bot.outbound.models import SendRequest
from bot.runtime import Runtime, RuntimeParts
from bot.settings import Settings
from bot.storage import MemoryStore
from bot.storage.base import ConversationKey
from tests.conftest import signed_client
from webhooks.app import create_app
from webhooks.services import Services


class Hello:
    """A turn handler that always says hello."""

    async def handle(self, ctx: TurnContext) -> TurnResult:
        return TurnResult(replies=(Reply(text="hello"),), intent="hello")


class KeptOutbox:
    """An outbox that keeps what it is given (never sends)."""

    def __init__(self) -> None:
        self.sends: list[SendRequest] = []

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        self.sends.append(request)

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        pass

    async def submit_handoff_return(self, key: ConversationKey, at: float) -> None:
        pass

    async def close(self) -> None:
        pass


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def test_every_injectable_part_is_used_as_given(settings: Settings) -> None:
    # The keywords create_app has always taken, plus the outbox build_runtime took.
    parts: dict[str, Any] = {
        "store": MemoryStore(),
        "clock": FrozenClock(datetime(2026, 3, 2, 14, tzinfo=UTC)),
        "handler": Hello(),
        "chat_model": object(),
        "twilio": object(),
        "outbox": KeptOutbox(),
        "consent_ledger": MemoryConsentLedger(),
    }
    assert set(parts) == RuntimeParts.__optional_keys__
    services = services_of(create_app(settings, **parts))
    assert services.store is parts["store"] and services.clock is parts["clock"]
    assert services.handler is parts["handler"] and services.twilio is parts["twilio"]
    assert services.require_outbound().outbox is parts["outbox"] is services.outbound.outbox
    assert services.consent_ledger is parts["consent_ledger"]


def test_the_model_reaches_the_brain_it_builds(settings: Settings) -> None:
    model = object()
    services = services_of(create_app(settings, store=MemoryStore(), chat_model=model))
    # The Brain's model step wraps the injected chat model.
    assert services.handler.model.model is model  # type: ignore[attr-defined]


def test_a_misspelt_part_is_an_error_not_ignored(settings: Settings) -> None:
    with pytest.raises(TypeError, match="unexpected keywords: stor"):
        create_app(settings, stor=MemoryStore())  # type: ignore[call-arg]


def test_the_services_are_the_runtime_not_a_copy(settings: Settings) -> None:
    # One object: what the outbound parts hold on to is what the routers see.
    services = services_of(create_app(settings, store=MemoryStore(), handler=Hello()))
    assert isinstance(services, Runtime)
    assert services.jobs["reminders"] == services.require_outbound().reminders.run
    assert services.signatures is not None  # built from the settings


async def test_defaults_are_built_from_the_settings(settings: Settings) -> None:
    app = create_app(settings, store=MemoryStore(), handler=Hello())
    client = signed_client(app)
    async with app.router.lifespan_context(app):
        services = services_of(app)
        assert services.twilio is not None  # opened from the settings
        assert services.require_outbound().sender.client is services.twilio
        response = await client.post(
            "/twilio/messages",
            {
                "MessageSid": "SM" + "1" * 32,
                "AccountSid": settings.twilio_account_sid,
                "From": "+14155550123",
                "To": "+15005550006",
                "Body": "hi",
            },
        )
        assert response.status_code == 200 and "hello" in response.text
    await client.http.aclose()


async def test_the_webhook_fast_path_answers_like_the_router(settings: Settings) -> None:
    # POST /twilio/messages (and its alias) skip FastAPI's router; the answers,
    # errors and metrics must be the router's.
    from bot.messages import Channel
    from devtools.webhook_client import inbound_form, parse_twiml

    app = create_app(settings, store=MemoryStore(), handler=Hello())
    client = signed_client(app)
    form = inbound_form(Channel.SMS, "+14155550123", "+15005550006", "hi")
    for path in ("/twilio/messages", "/twilio/inbound"):
        answer = await client.post(path, dict(form, MessageSid="SM" + str(len(path) % 10) * 32))
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/xml")
        assert parse_twiml(answer.text) == [("hello", ())]
    forged = await client.http.post("/twilio/messages", data=form, headers={"X-Twilio-Signature": "bad"})
    assert forged.status_code == 403 and "signature" in forged.json()["detail"].lower()
    unsigned_junk = await client.http.post("/twilio/messages", content=b"x", headers={"Content-Type": "text/plain"})
    assert unsigned_junk.status_code == 415 and unsigned_junk.json()["detail"]
    assert (await client.http.get("/twilio/messages")).status_code == 405  # still the router's
    metrics = (await client.http.get("/metrics")).text
    assert 'bot_http_requests_total{endpoint="/twilio/messages",status="200"} 1.0' in metrics
    assert 'endpoint="/twilio/messages",status="403"' in metrics


def test_the_server_factory_freezes_its_start_up_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn --factory builds the app with app_from_env: its long-lived start-up
    # objects leave the collector's sight, so full collections stay short.
    import gc

    from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC_URL
    from webhooks.app import app_from_env

    for name, value in {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                        "PUBLIC_BASE_URL": PUBLIC_URL, "ENVIRONMENT": "test", "ALLOW_TEST_ENVIRONMENT": "true",
                        "REDIS_URL": ""}.items():
        monkeypatch.setenv(name, value)
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        app_from_env()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # tests build many apps: let them be collected

"""Status callbacks end to end: the simulator plays each message's life and calls the bot back."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI

from bot.errors import RecipientOptedOutError
from bot.messages import Channel, TemplateMessage
from bot.outbound.models import SendRequest
from bot.outbound.outbox import InlineOutbox
from bot.outbound.service import Outbound
from bot.storage import ConversationKey, RedisStore
from devtools.simulator import FailureRule
from tests.bot.outbound.conftest import SMS_KEY, START, THIRD_PARTY_WARNINGS, USER, WA_KEY, Twilio, user_wrote

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]


def outbound_of(app: FastAPI) -> Outbound:
    outbound: Outbound = app.state.services.require_outbound()
    return outbound


async def settle(app: FastAPI, twilio: Twilio) -> None:
    """Until the simulator's callbacks and the bot's outbox are both quiet."""
    outbox = outbound_of(app).outbox
    assert isinstance(outbox, InlineOutbox)
    for _ in range(5):
        await twilio.sim.drain()
        await outbox.drain()


async def test_callbacks_track_each_message(make_app: Callable[..., FastAPI], twilio: Twilio) -> None:
    app = make_app()
    outbound = outbound_of(app)
    result = await outbound.sender.send(SendRequest(key=SMS_KEY, body="hi", idempotency_key="k:1"))
    await settle(app, twilio)
    assert await outbound.tracker.state(result.sid) == "delivered"
    metrics = app.state.services.metrics.status_callbacks
    assert [metrics.labels(s, "")._value.get() for s in ("queued", "sent", "delivered")] == [1, 1, 1]


async def test_63016_in_a_callback_sends_the_template_instead(
    make_app: Callable[..., FastAPI], twilio: Twilio, redis_store: RedisStore
) -> None:
    # Our state says the user wrote just now; Twilio's window says otherwise,
    # and, like Twilio, the simulator accepts the message and fails it later.
    await user_wrote(redis_store, WA_KEY, START)
    app = make_app()
    outbound = outbound_of(app)
    welcome = TemplateMessage("welcome_back", {"name": "Ana"})
    first = await outbound.sender.send(SendRequest(key=WA_KEY, body="free-form", idempotency_key="reply:SM1:0",
                                                   fallback_template=welcome))
    await settle(app, twilio)
    [failed, retry] = twilio.sent()
    assert failed.sid == first.sid and (failed.status, failed.error_code) == ("failed", 63016)
    assert retry.content_sid == outbound.templates.get("welcome_back").content_sid
    assert await outbound.tracker.state(failed.sid) == "failed"
    assert await outbound.tracker.state(retry.sid) == "read"
    assert app.state.services.metrics.status_callbacks.labels("failed", "63016")._value.get() == 1


async def test_21610_in_a_callback_suppresses_the_user(
    make_app: Callable[..., FastAPI], twilio: Twilio, redis_store: RedisStore
) -> None:
    twilio.sim.inject_failure(FailureRule(to=USER, error_code=21610, status="failed"))
    app = make_app()
    sender = outbound_of(app).sender
    await sender.send(SendRequest(key=SMS_KEY, body="hi", idempotency_key="k:1"))
    await settle(app, twilio)
    assert await redis_store.is_opted_out(SMS_KEY)
    with pytest.raises(RecipientOptedOutError):
        await sender.send(SendRequest(key=SMS_KEY, body="hi again", idempotency_key="k:2"))
    assert len(twilio.sent()) == 1


async def test_campaign_delivery_is_tallied(make_app: Callable[..., FastAPI], twilio: Twilio) -> None:
    twilio.sim.inject_failure(FailureRule(to="+14155550102", error_code=30003))
    app = make_app()
    outbound = outbound_of(app)
    for user in ("+14155550101", "+14155550102"):
        key = ConversationKey(Channel.SMS, SMS_KEY.bot, user)
        await outbound.outbox.submit(SendRequest(
            key=key, template=TemplateMessage("welcome_back", {"name": "Ana"}), purpose="broadcast",
            campaign="c1", idempotency_key=f"bcast:c1:{user}",
        ))
    await settle(app, twilio)
    summary = await outbound.campaigns.summary("c1")
    assert summary.sent == 2
    assert summary.delivery == {"delivered": 1, "undelivered": 1}

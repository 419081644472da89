"""The outbox (in-process flavour), the REST deliverer and the webhook paths that use them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from bot.clock import FrozenClock
from bot.messages import Channel, Choice, InboundMessage, Location, Media, OptOutType, TemplateMessage
from bot.outbound.models import SendRequest, inbound_from_dict, inbound_to_dict
from bot.outbound.outbox import InlineOutbox, perform_turn
from bot.runtime import Runtime
from bot.storage import RedisStore
from devtools.simulator import send_inbound
from devtools.simulator.faults import ApiFault
from tests.bot.outbound.conftest import SMS_KEY, THIRD_PARTY_WARNINGS, USER, WA_KEY, Echo, Twilio
from tests.conftest import BOT_NUMBER
from webhooks.twiml import EMPTY_TWIML

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]


def outbox_of(runtime: Runtime) -> InlineOutbox:
    outbox = runtime.require_outbound().outbox
    assert isinstance(outbox, InlineOutbox)
    return outbox


def test_requests_and_messages_survive_json() -> None:
    request = SendRequest(
        key=WA_KEY, body="Hi", media=("https://example.com/a.png",),
        template=TemplateMessage("welcome_back", {"name": "Ana"}), choices=(Choice("y", "Yes"),),
        fallback_template=TemplateMessage("welcome_back", {"name": "Ana"}), idempotency_key="k:1",
        purpose="broadcast", campaign="spring", compliance=True, last_inbound_at=12.5,
    )
    assert SendRequest.from_dict(request.to_dict()) == request
    msg = InboundMessage(
        message_sid="SM1", channel=Channel.WHATSAPP, user=USER, bot=BOT_NUMBER, body="hi",
        media=(Media("https://m/1", "image/png"),), location=Location(1.5, 2.5, "addr", "label"),
        button_payload="yes", button_text="Yes", profile_name="Ana", opt_out_type=OptOutType.STOP,
        num_segments=1, extra={"Foo": "bar"},
    )
    assert inbound_from_dict(inbound_to_dict(msg)) == msg


def test_a_request_must_carry_something() -> None:
    with pytest.raises(ValueError, match="nothing to send"):
        SendRequest(key=SMS_KEY, body="  ", idempotency_key="k")
    with pytest.raises(ValueError, match="idempotency_key"):
        SendRequest(key=SMS_KEY, body="x", idempotency_key="")


async def test_inline_outbox_sends_once_per_key(runtime: Runtime, twilio: Twilio) -> None:
    outbox = outbox_of(runtime)
    request = SendRequest(key=SMS_KEY, body="hello", idempotency_key="k:1")
    await outbox.submit(request, delay=0.05)
    await outbox.submit(request)  # already queued: dropped
    await outbox.drain()
    await outbox.submit(request)  # already sent: the ledger makes it a no-op
    await outbox.drain()
    assert len(twilio.sent()) == 1


async def test_inline_outbox_retries_retryable_failures(make_runtime: Callable[..., Runtime],
                                                        twilio: Twilio) -> None:
    runtime = make_runtime(outbound_max_attempts=1)
    outbox = InlineOutbox(clock=runtime.clock, retry_delays=(0.01, 0.01))
    outbox.attach(runtime.outbox_jobs)
    twilio.faults.fail_next(ApiFault.server_error(), ApiFault.too_many_requests())
    await outbox.submit(SendRequest(key=SMS_KEY, body="hello", idempotency_key="k:1"))
    await outbox.drain()
    assert len(twilio.faults.creates) == 3 and len(twilio.sent()) == 1


# -- through the webhook (typed wiring: runtime.rest_deliver, runtime.outbound.outbox) --

async def test_whatsapp_choices_go_as_buttons_and_the_twiml_is_empty(
    make_app: Callable[..., FastAPI], twilio: Twilio
) -> None:
    choices = (Choice("yes", "Yes"), Choice("no", "No"))
    make_app(handler=Echo(choices=choices))
    result = await send_inbound(twilio.sim, user=USER, bot=BOT_NUMBER, channel=Channel.WHATSAPP, body="book")
    assert result.status_code == 200 and result.replies == ()
    [message] = twilio.sent()
    assert message.content_sid is not None and [b.title for b in message.buttons]
    assert dict(message.content_variables) == {"1": "echo: book", "2": "Yes", "3": "yes", "4": "No", "5": "no"}


async def test_a_slow_turn_is_answered_late_by_rest_in_order(
    make_app: Callable[..., FastAPI], make_settings: Callable[..., Any], twilio: Twilio
) -> None:
    handler = Echo(delay=0.6)
    app = make_app(handler=handler, settings=make_settings(reply_budget_seconds=0.2, outbound_backoff_seconds=0.0))
    first = asyncio.create_task(send_inbound(twilio.sim, user=USER, bot=BOT_NUMBER, body="slow one"))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(send_inbound(twilio.sim, user=USER, bot=BOT_NUMBER, body="next"))
    for answered in await asyncio.gather(first, second):
        # Both answered within the budget: the second waits behind the first.
        assert answered.status_code == 200 and answered.answer == EMPTY_TWIML
    background = app.state.services.background
    while background:
        await asyncio.wait(set(background))
    # The recovery jobs the webhook queued (delay: the lease) run at once on a
    # drain, and find both turns answered.
    outbox = app.state.services.outbound.outbox
    assert outbox.pending == 2
    await asyncio.wait_for(outbox.drain(), 5)
    await twilio.sim.drain()
    replies = [m for m in twilio.sim.conversation(Channel.SMS, user=USER) if m.origin.value == "bot"]
    assert [m.body for m in replies] == ["echo: slow one", "echo: next"]
    assert {m.direction for m in replies} == {"outbound-api"}  # late replies go by REST
    assert handler.runs == ["slow one", "next"]


# -- the re-run-turn job ------------------------------------------------------------

def inbound(body: str = "are you there?", sid: str = "SM" + "7" * 32) -> InboundMessage:
    return InboundMessage(message_sid=sid, channel=Channel.SMS, user=USER, bot=BOT_NUMBER, body=body)


async def test_rerun_of_an_answered_turn_is_a_no_op(runtime: Runtime, twilio: Twilio) -> None:
    msg = inbound()
    assert await perform_turn(runtime.outbox_jobs, msg) == "answered"
    assert await perform_turn(runtime.outbox_jobs, msg) == "duplicate"
    assert [m.body for m in twilio.sent()] == ["echo: are you there?"]


async def test_a_turn_whose_process_died_is_run_again(
    make_runtime: Callable[..., Runtime], twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    runtime = make_runtime(lock_lease_seconds=0.3)
    msg = inbound()
    # A web process took the turn and died without answering.
    await redis_store.begin_turn(SMS_KEY, msg.message_sid, "dead", lease_seconds=0.3)
    await outbox_of(runtime).submit_turn(msg, delay=0.4)
    await outbox_of(runtime).drain()
    assert [m.body for m in twilio.sent()] == ["echo: are you there?"]
    state = await redis_store.load(SMS_KEY)
    assert state is not None and state.turns == 1


async def test_a_crashing_turn_gets_an_apology_by_rest(make_runtime: Callable[..., Runtime], twilio: Twilio) -> None:
    class Broken(Echo):
        async def handle(self, ctx: Any) -> Any:
            raise RuntimeError("bug")

    runtime = make_runtime(handler=Broken())
    assert await perform_turn(runtime.outbox_jobs, inbound()) == "failed"
    [apology] = twilio.sent()
    assert "sorry" in apology.body.lower()


async def test_late_whatsapp_reply_after_a_day_falls_back_to_welcome_back(
    runtime: Runtime, twilio: Twilio, clock: FrozenClock
) -> None:
    # A turn re-run long after the message (the worker was down for a day).
    msg = InboundMessage(message_sid="SM" + "8" * 32, channel=Channel.WHATSAPP, user=USER, bot=BOT_NUMBER,
                         body="hi", profile_name="Ana")
    twilio.sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT_NUMBER)
    clock.advance(timedelta(hours=30))
    deliver = runtime.rest_deliver
    assert deliver is not None
    from bot.messages import Reply, TurnResult
    from bot.storage import ConversationState

    state = ConversationState.new(WA_KEY)
    state.last_inbound_at = clock.timestamp() - 30 * 3600
    answer = await deliver(msg, TurnResult(replies=(Reply(text="late answer"),)), state)
    assert answer == ""  # all went by REST: nothing for the webhook's answer (it serves <Response/>)
    [message] = twilio.sent()
    assert dict(message.content_variables) == {"1": "Ana"}

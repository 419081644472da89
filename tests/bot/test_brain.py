"""The Brain over the real webhook path: intents, flows, hand-off, the model step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from bot.appointments import AppointmentBook
from bot.clock import FrozenClock
from bot.messages import Channel
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from bot.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import BOT_NUMBER, signed_client
from webhooks.app import create_app

NY = ZoneInfo("America/New_York")
MONDAY_9AM = datetime(2026, 3, 2, 9, 0, tzinfo=NY)
USER = "+14155550123"


class Phone:
    """A texter: sends signed messages and reads the TwiML replies."""

    def __init__(self, app: FastAPI, channel: Channel = Channel.SMS, user: str = USER) -> None:
        self.client: WebhookClient = signed_client(app)
        self.channel, self.user = channel, user

    async def say(self, text: str, **kw: Any) -> str:
        form = inbound_form(self.channel, self.user, BOT_NUMBER, text, profile_name="Ana", **kw)
        resp = await self.client.post("/twilio/messages", form)
        assert resp.status_code == 200, resp.text
        return "\n".join(body for body, _ in parse_twiml(resp.text))


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(MONDAY_9AM)


@pytest.fixture
def make_app(make_settings: Callable[..., Settings], redis_store: RedisStore,
             clock: FrozenClock) -> Callable[..., FastAPI]:
    def make(chat_model: Any = None, **overrides: Any) -> FastAPI:
        return create_app(make_settings(**overrides), store=redis_store, clock=clock, chat_model=chat_model)

    return make


@pytest.fixture
def phone(make_app: Callable[..., FastAPI]) -> Phone:
    return Phone(make_app())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("what are your hours?", "Mon-Fri 8am-5pm"),
        ("where are you located", "500 Market St, Springfield"),
        ("how much is a cleaning", "$120"),
        ("prices?", "whitening $350"),
        ("thanks!", "welcome"),
        ("bye", "Bye"),
        ("what can you do", "book"),
        ("hello", "Bright Smile Dental"),
    ],
)
async def test_answers_from_business_data(phone: Phone, text: str, expected: str) -> None:
    assert expected.lower() in (await phone.say(text)).lower()


async def test_filling_price_says_from(phone: Phone) -> None:
    assert "from $150" in await phone.say("how much for a filling")


async def test_full_booking_over_sms(phone: Phone, redis_store: RedisStore) -> None:
    confirm = await phone.say("book a cleaning tomorrow at 3pm")
    assert "Tue, Mar 3 at 3:00 PM" in confirm
    assert "1. Yes" in confirm and "2. No" in confirm
    booked = await phone.say("1")
    assert "booked" in booked.lower() and "Tue, Mar 3 at 3:00 PM" in booked
    book = AppointmentBook(redis_store, NY)
    [appt] = await book.upcoming_for(ConversationKey(Channel.SMS, BOT_NUMBER, USER), now=MONDAY_9AM)
    assert appt.service == "cleaning"
    assert appt.start == datetime(2026, 3, 3, 15, tzinfo=NY)
    assert "cleaning on Tue, Mar 3 at 3:00 PM" in await phone.say("my appointments")


async def test_booking_asks_only_for_what_is_missing(phone: Phone) -> None:
    assert "which service" in (await phone.say("i want to book an appointment")).lower()
    assert "what day" in (await phone.say("a checkup")).lower()
    times = await phone.say("thursday")
    assert "Thu, Mar 5" in times and "1. 8:00 AM" in times
    confirm = await phone.say("2")
    assert "checkup on Thu, Mar 5" in confirm
    assert "booked" in (await phone.say("yes")).lower()


async def test_part_of_day_offers_times_in_that_window(phone: Phone) -> None:
    reply = await phone.say("can i come in fri morning for a checkup")
    assert "Fri, Mar 6" in reply
    assert "PM" not in reply


async def test_past_time_is_refused(phone: Phone) -> None:
    reply = await phone.say("book a cleaning today at 8am")
    assert "already passed" in reply


async def test_outside_hours_offers_nearest_free_times(phone: Phone) -> None:
    reply = await phone.say("book a whitening on saturday at 12")  # 90 min past the 1pm close
    assert "not open" in reply
    assert "1. Sat, Mar 7 at" in reply or "1. Fri, Mar 6 at" in reply


async def test_taken_slot_offers_alternatives(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    ana, ben = Phone(app, user="+14155550001"), Phone(app, user="+14155550002")
    await ana.say("book a cleaning tomorrow at 10am")
    assert "booked" in (await ana.say("yes")).lower()
    reply = await ben.say("book a checkup tomorrow at 10:30")
    assert "already taken" in reply
    assert "Tue, Mar 3 at 11:00 AM" in reply  # the nearest free time
    pick = await ben.say("1")
    assert "Book a checkup" in pick or "checkup" in pick


async def test_deny_asks_for_another_time(phone: Phone) -> None:
    await phone.say("book a cleaning tomorrow at 3pm")
    assert "what day and time" in (await phone.say("no")).lower()


async def test_leave_a_flow_for_a_question_and_come_back(phone: Phone) -> None:
    await phone.say("book a cleaning")
    reply = await phone.say("actually, what are your hours?")
    assert "Mon-Fri 8am-5pm" in reply
    assert "Back to your booking" in reply and "what day" in reply.lower()
    assert "Tue, Mar 3" in await phone.say("tomorrow at 2pm")


async def test_never_mind_ends_the_flow_but_stop_is_compliance(
    phone: Phone, redis_store: RedisStore
) -> None:
    await phone.say("book a cleaning")
    assert "stopped that" in (await phone.say("never mind"))
    await phone.say("book a cleaning")
    assert await phone.say("STOP") == ""
    assert await redis_store.is_opted_out(ConversationKey(Channel.SMS, BOT_NUMBER, USER))


async def test_reschedule_and_cancel(phone: Phone, redis_store: RedisStore) -> None:
    await phone.say("book a cleaning tomorrow at 3pm")
    await phone.say("yes")
    move = await phone.say("can i reschedule to wednesday at 10am")
    assert "Move your cleaning to Wed, Mar 4 at 10:00 AM" in move
    assert "Wed, Mar 4 at 10:00 AM" in await phone.say("yes")
    confirm = await phone.say("cancel my appointment")
    assert "Cancel your cleaning on Wed, Mar 4" in confirm
    assert "cancelled" in (await phone.say("1")).lower()
    assert "no upcoming" in (await phone.say("my appointments")).lower()
    assert "can't find any upcoming" in (await phone.say("i need to reschedule"))


async def test_cancel_can_be_declined(phone: Phone) -> None:
    await phone.say("book a checkup tomorrow at 9am")
    await phone.say("yes")
    await phone.say("cancel my appointment")
    assert "kept" in await phone.say("no")
    assert "checkup" in await phone.say("my appointments")


async def test_whatsapp_booking_with_buttons(make_app: Callable[..., FastAPI]) -> None:
    app = make_app()
    # Without the REST sender (tested with the simulator in tests/bot/outbound),
    # WhatsApp choices fall back to numbered lines in TwiML.
    app.state.services.extras.pop("rest_deliver", None)
    wa = Phone(app, Channel.WHATSAPP)
    confirm = await wa.say("book a cleaning tomorrow at 3pm")
    assert "*Tue, Mar 3 at 3:00 PM*" in confirm  # light formatting on WhatsApp
    booked = await wa.say("Yes", button_payload="yes", button_text="Yes")
    assert "booked" in booked.lower()


async def test_handoff_silences_the_bot_until_idle_or_release(
    phone: Phone, clock: FrozenClock, redis_store: RedisStore
) -> None:
    from datetime import timedelta

    assert "connecting you" in (await phone.say("can i talk to a real person")).lower()
    assert await phone.say("hello?") == ""
    assert await phone.say("what are your hours") == ""
    assert await phone.say("STOP") == ""  # compliance still works (Twilio confirms on SMS)
    assert await redis_store.is_opted_out(ConversationKey(Channel.SMS, BOT_NUMBER, USER))
    await phone.say("START")
    clock.advance(timedelta(minutes=31))
    assert "Mon-Fri" in await phone.say("what are your hours")
    await phone.say("agent please")
    assert "book" in await phone.say("bot")  # explicit release: the bot answers again


async def test_fallback_without_a_model(phone: Phone) -> None:
    reply = await phone.say("who won the game last night")
    assert "can't help with that" in reply and "book" in reply


# -- the model step (LangChain fake chat models) --------------------------------

async def test_model_answers_out_of_scope_grounded(make_app: Callable[..., FastAPI]) -> None:
    model = FakeListChatModel(responses=['{"intent": "fallback", "answer": "We are at 500 Market St."}'])
    phone = Phone(make_app(chat_model=model))
    assert await phone.say("who won the game last night") == "We are at 500 Market St."
    assert model.i == 0  # cycled back: exactly one call


async def test_model_is_not_called_for_resolved_messages(make_app: Callable[..., FastAPI]) -> None:
    model = FakeListChatModel(responses=["never used"])
    phone = Phone(make_app(chat_model=model))
    await phone.say("what are your hours")
    await phone.say("book a cleaning tomorrow at 3pm")
    assert model.i == 0


async def test_model_intent_routes_to_the_flow(make_app: Callable[..., FastAPI]) -> None:
    model = FakeListChatModel(responses=['```json\n{"intent": "hours"}\n```'])
    phone = Phone(make_app(chat_model=model))
    assert "Mon-Fri" in await phone.say("zzqx opening thingy?")


async def test_model_plain_text_answer_is_capped_on_sms(make_app: Callable[..., FastAPI]) -> None:
    from bot.sms.segments import count_segments

    long_answer = "We are a dental clinic. " * 40
    phone = Phone(make_app(chat_model=FakeListChatModel(responses=[long_answer])))
    reply = await phone.say("tell me about yourselves in detail please")
    assert count_segments(reply).segments <= 2


@pytest.mark.parametrize(
    "model",
    [
        FakeListChatModel(responses=['{"intent": '], ),  # malformed
        FakeListChatModel(responses=['{"intent": "astrology"}']),  # unknown intent
        FakeListChatModel(responses=[]),  # the provider errors (IndexError inside the fake)
        FakeListChatModel(responses=["too slow"], sleep=2.0),  # timeout
    ],
    ids=["malformed", "unknown-intent", "error", "timeout"],
)
async def test_model_failures_end_in_the_offline_fallback(
    make_app: Callable[..., FastAPI], model: FakeListChatModel
) -> None:
    phone = Phone(make_app(chat_model=model, llm_timeout_seconds=0.3))
    reply = await phone.say("who won the game last night")
    assert "can't help with that" in reply

"""The Brain over the real webhook path: intents, flows, hand-off, the model step."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
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
from bot.storage.stores import Stores
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
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
def make_app(
    make_settings: Callable[..., Settings], redis_store: RedisStore, clock: FrozenClock
) -> Callable[..., FastAPI]:
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
    book = AppointmentBook(Stores.beside(redis_store).appointments, NY)
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
    assert "Back to your booking: which day for your cleaning?" in reply
    assert "Tue, Mar 3" in await phone.say("tomorrow at 2pm")


async def test_never_mind_ends_the_flow_but_stop_is_compliance(phone: Phone, redis_store: RedisStore) -> None:
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
    app.state.services.rest_deliver = None
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
    # The first message gets one short acknowledgment; the next ones, none.
    assert await phone.say("hello?") == "Our team has your message and will reply here soon."
    assert await phone.say("what are your hours") == ""
    assert await phone.say("STOP") == ""  # compliance still works (Twilio confirms on SMS)
    assert await redis_store.is_opted_out(ConversationKey(Channel.SMS, BOT_NUMBER, USER))
    await phone.say("START")
    # The opt-out ended what was going on, the hand-off too (docs/compliance.md): the bot answers.
    back = await phone.say("what are your hours")
    assert "Mon-Fri" in back and "team" not in back
    assert "connecting you" in (await phone.say("can i talk to a real person")).lower()
    await phone.say("hello?")
    clock.advance(timedelta(minutes=31))
    back = await phone.say("what are your hours")
    assert back.startswith("Our team hasn't picked this up, so I'm back to help.") and "Mon-Fri" in back
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
        FakeListChatModel(
            responses=['{"intent": '],
        ),  # malformed
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


# -- greetings, buttons outside a flow, media and locations ----------------------


@pytest.mark.parametrize("text", ["hi again", "Hey, it's me again!", "hello again 👋"])
async def test_hi_again_is_a_greeting_not_an_opt_in(make_app: Callable[..., FastAPI], text: str) -> None:
    app = make_app()
    brain = app.state.services.handler
    assert brain.nlu.classify(text, now=MONDAY_9AM).intent == "greet"
    assert (await Phone(app).say(text)).startswith("Hi! This is Bright Smile Dental.")


async def book_for(
    store: RedisStore,
    channel: Channel,
    *,
    service: str = "cleaning",
    start: datetime = datetime(2026, 3, 3, 15, tzinfo=NY),
) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    await book.add(
        ConversationKey(channel, BOT_NUMBER, USER),
        service=service,
        start=start,
        duration_minutes=60,
        name="Ana",
        now=MONDAY_9AM,
    )


async def test_reminder_confirm_button_confirms_the_appointment(
    make_app: Callable[..., FastAPI], redis_store: RedisStore
) -> None:
    await book_for(redis_store, Channel.WHATSAPP)
    wa = Phone(make_app(), Channel.WHATSAPP)
    reply = await wa.say("Confirm", button_payload="confirm", button_text="Confirm")
    assert "See you on Tue, Mar 3 at 3:00 PM" in reply and "cleaning" in reply


async def test_reminder_confirm_button_without_an_appointment(phone: Phone, make_app: Callable[..., FastAPI]) -> None:
    wa = Phone(make_app(), Channel.WHATSAPP)
    assert "can't find any upcoming" in await wa.say("Confirm", button_payload="confirm", button_text="Confirm")


async def test_reminder_reschedule_button_starts_rescheduling(
    make_app: Callable[..., FastAPI], redis_store: RedisStore
) -> None:
    await book_for(redis_store, Channel.WHATSAPP)
    app = make_app()
    app.state.services.rest_deliver = None  # Yes/No as numbered lines in TwiML
    wa = Phone(app, Channel.WHATSAPP)
    assert "What day would you like to come in for your cleaning?" in await wa.say(
        "Reschedule", button_payload="reschedule", button_text="Reschedule"
    )
    assert "Move your cleaning to Wed, Mar 4 at 10:00 AM" in await wa.say("wednesday at 10am")


async def test_reminder_button_inside_another_flow_resumes_it(
    make_app: Callable[..., FastAPI], redis_store: RedisStore
) -> None:
    await book_for(redis_store, Channel.WHATSAPP)
    wa = Phone(make_app(), Channel.WHATSAPP)
    await wa.say("book a checkup")
    reply = await wa.say("Confirm", button_payload="confirm", button_text="Confirm")
    assert "See you on Tue, Mar 3 at 3:00 PM" in reply
    assert "Back to your booking: which day for your checkup?" in reply


async def test_media_is_acknowledged_and_kept_as_data(phone: Phone, redis_store: RedisStore) -> None:
    url = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    reply = await phone.say("", media=[(url, "image/jpeg")])
    assert reply.startswith("Thanks, we got your photo")
    state = await redis_store.load(ConversationKey(Channel.SMS, BOT_NUMBER, USER))
    assert state is not None
    [kept] = state.data["media"]
    assert kept["url"] == url and kept["content_type"] == "image/jpeg"


async def test_media_caption_is_data_never_template_source(phone: Phone) -> None:
    reply = await phone.say("{{ 7 * 7 }}", media=[("https://example.com/x.png", "image/png")])
    assert reply.startswith("Thanks, we got your photo") and "49" not in reply


async def test_shared_location_gets_the_address_and_directions(make_app: Callable[..., FastAPI]) -> None:
    wa = Phone(make_app(), Channel.WHATSAPP)
    reply = await wa.say("", location=(40.7128, -74.006))
    assert "500 Market St, Springfield" in reply
    assert "origin=40.7128%2C-74.006&destination=500+Market+St%2C+Springfield" in reply


def test_media_kind_and_directions_url() -> None:
    from bot.brain import directions_url, media_kind

    assert media_kind(["image/jpeg"]) == "photo"
    assert media_kind(["video/mp4"]) == "video"
    assert media_kind(["audio/ogg"]) == "voice message"
    assert media_kind(["image/jpeg", "video/mp4"]) == "files"
    assert directions_url("1 A St") == "https://www.google.com/maps/dir/?api=1&destination=1+A+St"


# -- offers, digressions with dates, picking by service ---------------------------


async def test_yes_after_a_price_starts_booking_that_service(phone: Phone) -> None:
    assert "Want to book?" in await phone.say("how much is whitening")
    assert await phone.say("yes") == "What day would you like to come in for your whitening?"


async def test_no_after_a_price_is_acknowledged(phone: Phone) -> None:
    await phone.say("prices?")
    assert await phone.say("no thanks") == "No problem. Anything else I can help with?"
    # The offer lives one turn: a later yes answers nothing.
    await phone.say("what are your hours")
    assert "not sure what that answers" in await phone.say("yes")


async def test_a_question_with_a_date_inside_a_flow_is_a_digression(phone: Phone) -> None:
    await phone.say("book a cleaning")
    reply = await phone.say("what are your hours on saturday?")
    assert "Sat 9am-1pm" in reply
    assert "Back to your booking: which day for your cleaning?" in reply
    # A bare service name still answers "which service?".
    await phone.say("never mind")
    await phone.say("i want to book")
    assert await phone.say("whitening") == "What day would you like to come in for your whitening?"


async def test_naming_the_service_picks_that_appointment(phone: Phone, redis_store: RedisStore) -> None:
    await book_for(redis_store, Channel.SMS)
    await book_for(redis_store, Channel.SMS, service="checkup", start=datetime(2026, 3, 5, 9, tzinfo=NY))
    assert "Which appointment" in await phone.say("i need to cancel")
    await phone.say("never mind")
    assert await phone.say("cancel my checkup") == "Cancel your checkup on Thu, Mar 5 at 9:00 AM?\n1. Yes\n2. No"


async def test_resume_names_the_flow(phone: Phone, redis_store: RedisStore) -> None:
    await book_for(redis_store, Channel.SMS)
    await phone.say("reschedule")
    assert "Back to rescheduling:" in await phone.say("where are you located?")


async def test_whatsapp_button_titles_fit_twenty_characters(make_app: Callable[..., FastAPI]) -> None:
    from bot.channels import WHATSAPP

    BUTTON_TITLE_MAX = WHATSAPP.button_title_max or 0

    app = make_app()
    app.state.services.rest_deliver = None  # numbered lines show the titles
    wa = Phone(app, Channel.WHATSAPP)
    reply = await wa.say("book a cleaning tomorrow at 7pm")
    titles = [line.split(". ", 1)[1] for line in reply.splitlines() if line[:2] in ("1.", "2.", "3.")]
    assert titles == ["Tue 3/3 3:00 PM", "Tue 3/3 3:30 PM", "Tue 3/3 4:00 PM"]
    assert all(len(t) <= BUTTON_TITLE_MAX for t in titles)


# -- hand-off: release and staff notification -------------------------------------


async def test_release_word_says_the_bot_is_back(phone: Phone) -> None:
    await phone.say("agent")
    assert "Our team has your message" in await phone.say("where are you")
    assert await phone.say("where are you??") == ""
    reply = await phone.say("Bot!")
    assert reply.startswith("You're back with the Bright Smile Dental assistant.")
    assert "500 Market St" in await phone.say("where are you")


class RecordingOutbox:
    """Collects what would be sent (the outbox protocol's ``submit``)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def submit(self, request: Any, *, delay: float = 0.0) -> None:
        self.sent.append(request)


async def test_handoff_notifies_staff_once_with_the_request(
    make_settings: Callable[..., Settings], redis_store: RedisStore, clock: FrozenClock
) -> None:
    from bot.brain import build_handler, outbox_staff_notifier
    from bot.templates import ReplyTemplates

    settings = make_settings(staff_number="+15005550009")
    brain = build_handler(
        settings, templates=ReplyTemplates(Path(settings.prompts_dir)), clock=clock, store=redis_store
    )
    outbox = RecordingOutbox()
    brain.notify_staff = outbox_staff_notifier(settings, outbox, brain.business)  # type: ignore[arg-type]
    phone = Phone(create_app(settings, store=redis_store, clock=clock, handler=brain))
    await phone.say("what are your hours")
    assert "connecting you" in await phone.say("i want to talk to a person about my bill")
    [notice] = outbox.sent
    assert notice.key == ConversationKey(Channel.SMS, BOT_NUMBER, "+15005550009")
    assert notice.purpose == "handoff" and notice.idempotency_key.startswith("handoff:")
    assert USER in notice.body and "user: i want to talk to a person about my bill" in notice.body
    assert "user: what are your hours" in notice.body
    await phone.say("hello?")
    # What they write while staff have it is passed on, one notice per message.
    assert len(outbox.sent) == 2 and outbox.sent[1].body.endswith("wrote: hello?")
    assert outbox.sent[1].idempotency_key != notice.idempotency_key


async def test_staff_notifier_defaults_to_the_business_phone(make_settings: Callable[..., Settings]) -> None:
    from bot.brain import outbox_staff_notifier
    from bot.business import load_business

    settings = make_settings()
    outbox = RecordingOutbox()
    business = load_business(Path(settings.intents_dir) / "business.yaml")
    notify = outbox_staff_notifier(settings, outbox, business)  # type: ignore[arg-type]
    await notify(ConversationKey(Channel.WHATSAPP, BOT_NUMBER, USER), "notice", "SM1")
    [sent] = outbox.sent
    assert sent.key.user == "+15550100199" and sent.key.channel is Channel.SMS


# -- the model's slots -------------------------------------------------------------


async def test_model_slots_fill_what_the_rules_missed(make_app: Callable[..., FastAPI]) -> None:
    model = FakeListChatModel(
        responses=['{"intent": "book", "service": "whitening", "date": "friday", "time": "10am", "answer": null}']
    )
    phone = Phone(make_app(chat_model=model))
    reply = await phone.say("i wanna get my pearly whites brighter")
    assert "Book a whitening on Fri, Mar 6 at 10:00 AM?" in reply


async def test_model_sees_the_last_bot_reply(make_app: Callable[..., FastAPI]) -> None:
    model = FakeListChatModel(responses=['{"intent": "fallback", "answer": "ok"}'])
    calls: list[Any] = []
    original = model.ainvoke

    async def spy(messages: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(messages)
        return await original(messages, *args, **kwargs)

    object.__setattr__(model, "ainvoke", spy)
    phone = Phone(make_app(chat_model=model))
    await phone.say("what are your hours")
    await phone.say("do you do braces")
    human = calls[0][-1].content
    assert "bot: Bright Smile Dental hours" in human and "New message: do you do braces" in human


async def test_a_price_asked_inside_a_flow_makes_no_offer(phone: Phone) -> None:
    await phone.say("book a checkup")
    assert "Back to your booking" in await phone.say("how much is a whitening?")
    # "yes" is not an answer to "what day?" and no offer was remembered: asked again, once.
    reply = await phone.say("yes")
    assert reply.count("What day would you like") <= 1


async def test_handoff_texts_the_staff_number_through_the_real_outbox(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # End to end: webhook -> Brain -> outbox -> REST sender -> the local Twilio API.
    from devtools.replay.runner import ReplayRunner
    from devtools.replay.transcript import load_transcripts

    path = tmp_path / "handoff.yaml"
    path.write_text(
        'name: handoff\nuser: "+14155550123"\nturns:\n'
        '  - user: "what are your hours"\n'
        '  - user: "i want to talk to a person about my bill"\n'
        '    expect: {reply_contains: "connecting you"}\n'
        '  - user: "hello?"\n'
        '    expect: {reply: "Our team has your message and will reply here soon."}\n'
    )
    report = await ReplayRunner(make_settings(staff_number="+14155550999")).run(load_transcripts([path]))
    [result] = report.results
    assert result.status == "passed", result.failure
    to_staff = [m for step in result.steps for m in step.sent if m.to == "+14155550999"]
    assert len(to_staff) == 2 and all(m.via == "rest" for m in to_staff)
    assert "+14155550123" in to_staff[0].body and "about my bill" in to_staff[0].body
    assert to_staff[1].body.endswith("wrote: hello?")

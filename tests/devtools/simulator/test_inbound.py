"""Inbound: the simulated phone sends signed webhooks like Twilio and reads the TwiML."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import ParseError

import httpx
import pytest
from twilio.request_validator import RequestValidator

from bot.clock import FrozenClock
from bot.messages import Channel, Choice, Location, Media
from devtools.simulator import (
    CreateMessageRequest,
    EventKind,
    MessageOrigin,
    Simulator,
    SimulatorConfig,
    send_inbound,
)
from devtools.simulator.inbound import DOCUMENT_PARSE_FAILURE, HTTP_RETRIEVAL_FAILURE, INVALID_CONTENT_TYPE, parse_twiml
from devtools.simulator.rules import DEFAULT_KEYWORD_REPLIES
from devtools.webhook_client import inbound_form as plain_inbound_form
from tests.devtools.simulator.conftest import AUTH_TOKEN, BOT, REMINDER, SERVICE, STATUS, USER, WEBHOOK, FakeBot

EXAMPLES = json.loads((Path(__file__).resolve().parents[2] / "data" / "twilio" / "example-payloads.json").read_text())
IMAGE = Media("https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM1/Media/ME1", "image/jpeg")
HARROW = Location(51.51322977399644, -0.2197976373036567, address="187 Freston Road, London", label="The Harrow Club")


def inbound_form(fake_bot: FakeBot) -> dict[str, str]:
    webhooks = [r for r in fake_bot.received if r.path == "/twilio/messages"]
    assert webhooks, "the bot received no webhook"
    assert webhooks[-1].valid, "the webhook signature must validate for the public URL"
    return webhooks[-1].form


async def offer_buttons(sim: Simulator) -> str:
    """The bot sends the quick-reply template; returns its SID."""
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    message = await sim.create_message(
        CreateMessageRequest(
            to=Channel.WHATSAPP.address(USER),
            from_=Channel.WHATSAPP.address(BOT),
            content_sid=REMINDER.sid,
            content_variables=json.dumps({"1": "Ana", "2": "Tue 3pm"}),
        )
    )
    return message.sid


CASES: dict[str, dict[str, Any]] = {
    "sms_plain": {"body": "Hi, what are your opening hours?", "messaging_service_sid": SERVICE},
    "mms_one_image": {"body": "Here is the photo", "media": [IMAGE]},
    "whatsapp_text": {"channel": Channel.WHATSAPP, "body": "Hello!", "profile_name": "Jane Doe"},
    "whatsapp_quick_reply_button": {"channel": Channel.WHATSAPP, "button": Choice("confirm", "Confirm")},
    "whatsapp_location": {"channel": Channel.WHATSAPP, "location": HARROW},
    "whatsapp_media_image": {"channel": Channel.WHATSAPP, "media": [IMAGE]},
}


@pytest.mark.parametrize("kind", list(CASES))
async def test_webhook_fields_match_real_captures(sim: Simulator, fake_bot: FakeBot, kind: str) -> None:
    offered = await offer_buttons(sim) if "button" in CASES[kind] else None
    result = await send_inbound(sim, user=USER, bot=BOT, **CASES[kind])
    assert result.status_code == 200 and result.error_code is None
    form = inbound_form(fake_bot)
    assert set(form) == set(EXAMPLES[kind]["form"]), f"fields differ from Twilio's capture for {kind}"
    assert form == dict(result.form)
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"] == result.message.sid
    assert form["AccountSid"] == sim.account_sid
    assert form["SmsStatus"] == "received" and form["ApiVersion"] == "2010-04-01"
    assert form["MessageSid"][:2] == EXAMPLES[kind]["form"]["MessageSid"][:2]  # SM or MM
    if kind.startswith("whatsapp"):
        assert form["From"] == f"whatsapp:{USER}" and form["WaId"] == USER.lstrip("+")
        assert form["MessageType"] == EXAMPLES[kind]["form"]["MessageType"]
    if offered:
        assert form["OriginalRepliedMessageSid"] == offered
        assert (form["ButtonPayload"], form["ButtonText"], form["Body"]) == ("confirm", "Confirm", "Confirm")
    if kind == "whatsapp_location":
        assert float(form["Latitude"]) == HARROW.latitude and form["Label"] == "The Harrow Club"
    if "media" in CASES[kind]:
        assert (form["NumMedia"], form["MediaUrl0"], form["MediaContentType0"]) == ("1", IMAGE.url, "image/jpeg")


PLAIN_CASES: dict[str, dict[str, Any]] = {
    "sms_plain": {"body": "Hi, what are your opening hours?"},
    "mms_one_image": {"body": "Here is the photo", "media": [(IMAGE.url, IMAGE.content_type)]},
    "whatsapp_text": {"channel": Channel.WHATSAPP, "body": "Hello!", "profile_name": "Jane Doe"},
    "whatsapp_quick_reply_button": {
        "channel": Channel.WHATSAPP,
        "button_payload": "confirm",
        "button_text": "Confirm",
        "replied_to": "SM" + "8" * 32,
    },
    "whatsapp_location": {"channel": Channel.WHATSAPP, "location": (HARROW.latitude, HARROW.longitude)},
    "whatsapp_media_image": {"channel": Channel.WHATSAPP, "media": [(IMAGE.url, IMAGE.content_type)]},
}


@pytest.mark.parametrize("kind", list(PLAIN_CASES))
def test_inbound_form_from_plain_values_is_the_same_form(kind: str) -> None:
    # bot chat, replay and the benchmarks build forms without a simulated
    # message: webhook_client.inbound_form goes through the same builder.
    case = {"channel": Channel.SMS, "body": "", **PLAIN_CASES[kind]}
    form = plain_inbound_form(case.pop("channel"), USER, BOT, case.pop("body"), **case)
    # Twilio adds these only for a Messaging Service or a named place.
    optional = {"MessagingServiceSid", "Address", "Label"}
    assert set(form) == set(EXAMPLES[kind]["form"]) - optional, f"fields differ from Twilio's capture for {kind}"
    assert form["MessageSid"] == form["SmsSid"] == form["SmsMessageSid"]
    assert form["MessageSid"][:2] == EXAMPLES[kind]["form"]["MessageSid"][:2]  # SM or MM
    if kind.startswith("whatsapp"):
        assert form["MessageType"] == EXAMPLES[kind]["form"]["MessageType"]
    if kind == "whatsapp_quick_reply_button":
        assert (form["ButtonPayload"], form["ButtonText"], form["Body"]) == ("confirm", "Confirm", "Confirm")
        assert form["OriginalRepliedMessageSender"] == form["To"]


async def test_advanced_opt_out_adds_opt_out_type(make_sim: Callable[..., Simulator], fake_bot: FakeBot) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, advanced_opt_out=True))
    await send_inbound(sim, user=USER, bot=BOT, body="STOP", messaging_service_sid=SERVICE)
    form = inbound_form(fake_bot)
    assert set(form) == set(EXAMPLES["sms_optout_advanced"]["form"])
    assert form["OptOutType"] == "STOP"
    await sim.aclose()
    await sim.http.aclose()


async def test_signature_covers_the_public_url_not_the_internal_one(
    make_sim: Callable[..., Simulator], fake_bot: FakeBot
) -> None:
    sim = make_sim(webhook_url="http://internal:8000/twilio/messages", webhook_public_url=WEBHOOK)
    result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
    validator = RequestValidator(AUTH_TOKEN)
    assert validator.validate(WEBHOOK, dict(result.form), result.signature)
    assert not validator.validate("http://internal:8000/twilio/messages", dict(result.form), result.signature)
    assert inbound_form(fake_bot)["Body"] == "hi"
    await sim.http.aclose()


async def test_blank_values_are_sent_and_signed(sim: Simulator, fake_bot: FakeBot) -> None:
    await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, location=HARROW)
    form = inbound_form(fake_bot)  # valid signature although Body is ""
    assert form["Body"] == ""


async def test_extra_fields_are_signed_too(sim: Simulator, fake_bot: FakeBot) -> None:
    await send_inbound(sim, user=USER, bot=BOT, body="hi", extra={"BrandNewTwilioField": "x"})
    assert inbound_form(fake_bot)["BrandNewTwilioField"] == "x"


async def test_twiml_replies_reach_the_phone(sim: Simulator, fake_bot: FakeBot) -> None:
    fake_bot.reply_with(
        "<?xml version='1.0' encoding='UTF-8'?><Response>"
        "<Message>Hello! Shall I book you in?</Message>"
        "<Message><Body>Here is our menu</Body><Media>https://example.com/menu.png</Media></Message>"
        "</Response>"
    )
    result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
    assert [r.body for r in result.replies] == ["Hello! Shall I book you in?", "Here is our menu"]
    assert result.replies[1].sid.startswith("MM") and result.replies[1].media[0].url == "https://example.com/menu.png"
    assert all(r.direction == "outbound-reply" and r.origin is MessageOrigin.BOT for r in result.replies)
    assert all(r.to == USER and r.from_ == BOT for r in result.replies)
    await sim.drain()
    thread = sim.conversation(Channel.SMS, user=USER)
    assert [m.origin for m in thread] == [MessageOrigin.USER, MessageOrigin.BOT, MessageOrigin.BOT]
    assert [m.status for m in thread] == ["received", "delivered", "delivered"]


async def test_twiml_status_callback_attribute(sim: Simulator, fake_bot: FakeBot) -> None:
    fake_bot.reply_with(f'<Response><Message statusCallback="{STATUS}">ok</Message></Response>')
    result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
    await sim.drain()
    assert fake_bot.statuses(result.replies[0].sid) == ["queued", "sent", "delivered"]


async def test_plain_text_answer_is_sent_as_a_message(sim: Simulator, fake_bot: FakeBot) -> None:
    fake_bot.reply_with("oops, not TwiML", content_type="text/plain")
    result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
    assert [r.body for r in result.replies] == ["oops, not TwiML"]


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ((200, "<Response><Message>unclosed</Response>", "text/xml"), DOCUMENT_PARSE_FAILURE),
        ((200, "<Html/>", "application/xml"), DOCUMENT_PARSE_FAILURE),
        ((200, '{"reply": "hi"}', "application/json"), INVALID_CONTENT_TYPE),
        ((500, "boom", "text/plain"), HTTP_RETRIEVAL_FAILURE),
    ],
    ids=["bad-xml", "not-response", "json", "server-error"],
)
async def test_broken_answers_get_twilio_debugger_codes(
    sim: Simulator, fake_bot: FakeBot, answer: tuple[int, str, str], code: int
) -> None:
    fake_bot.answer = answer
    result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
    assert result.error_code == code and result.replies == ()


async def test_unreachable_bot_is_11200(make_sim: Callable[..., Simulator]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sim = make_sim(http_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with sim.subscribe() as events:
        result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
        kinds = [(await events.get()).kind, (await events.get()).kind]
    assert result.status_code is None and result.error_code == HTTP_RETRIEVAL_FAILURE
    assert "connection refused" in (result.error or "")
    assert kinds == [EventKind.MESSAGE_CREATED, EventKind.INBOUND_SENT]
    await sim.http.aclose()


async def test_empty_answer_sends_nothing(sim: Simulator) -> None:
    result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
    assert result.replies == () and result.answer == "<Response/>"


# -- keywords ------------------------------------------------------------------


async def test_stop_on_sms(sim: Simulator, fake_bot: FakeBot) -> None:
    fake_bot.reply_with("<Response><Message>Sorry to see you go</Message></Response>")
    result = await send_inbound(sim, user=USER, bot=BOT, body=" Stop ")
    assert sim.is_opted_out(Channel.SMS, user=USER, bot=BOT)
    # Twilio answers itself, on the bot's number, and still forwards STOP.
    assert result.keyword_reply is not None
    assert result.keyword_reply.origin is MessageOrigin.TWILIO
    assert result.keyword_reply.body == DEFAULT_KEYWORD_REPLIES["STOP"]
    assert inbound_form(fake_bot)["Body"] == " Stop "
    await sim.drain()
    # The bot's own TwiML answer to an opted-out user is refused.
    blocked = sim.get_message(result.replies[0].sid)
    assert blocked is not None and (blocked.status, blocked.error_code) == ("failed", 21610)
    assert sim.get_message(result.keyword_reply.sid).status == "delivered"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("word", "text"), [("start", "START"), ("unstop", "START"), ("YES", "START"), ("help", "HELP")]
)
async def test_start_and_help_on_sms(sim: Simulator, word: str, text: str) -> None:
    sim.opt_out(Channel.SMS, user=USER, bot=BOT)
    result = await send_inbound(sim, user=USER, bot=BOT, body=word)
    assert result.keyword_reply is not None and result.keyword_reply.body == DEFAULT_KEYWORD_REPLIES[text]
    assert sim.is_opted_out(Channel.SMS, user=USER, bot=BOT) is (text == "HELP")


async def test_keyword_must_be_the_whole_body(sim: Simulator) -> None:
    result = await send_inbound(sim, user=USER, bot=BOT, body="stop sending me reminders")
    assert result.keyword_reply is None
    assert not sim.is_opted_out(Channel.SMS, user=USER, bot=BOT)


async def test_bot_answers_keywords_when_configured(make_sim: Callable[..., Simulator]) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, twilio_keyword_replies=False))
    result = await send_inbound(sim, user=USER, bot=BOT, body="STOP")
    assert result.keyword_reply is None
    assert sim.is_opted_out(Channel.SMS, user=USER, bot=BOT)  # Twilio still blocks
    await sim.http.aclose()


async def test_whatsapp_stop_is_left_to_the_bot(sim: Simulator) -> None:
    result = await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, body="STOP")
    assert result.keyword_reply is None
    assert not sim.is_opted_out(Channel.WHATSAPP, user=USER, bot=BOT)


async def test_whatsapp_keywords_can_be_enabled(make_sim: Callable[..., Simulator]) -> None:
    config = SimulatorConfig(step_delay=0, keyword_channels=frozenset(Channel))
    sim = make_sim(config=config)
    await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, body="STOP")
    assert sim.is_opted_out(Channel.WHATSAPP, user=USER, bot=BOT)
    assert not sim.is_opted_out(Channel.SMS, user=USER, bot=BOT)
    await sim.http.aclose()


# -- window, events, arguments ---------------------------------------------------


async def test_inbound_opens_the_whatsapp_window(sim: Simulator, clock: FrozenClock) -> None:
    assert not sim.in_session(user=USER, bot=BOT)
    await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, body="hi")
    assert sim.last_inbound(Channel.WHATSAPP, user=USER, bot=BOT) == clock.now()
    clock.advance(timedelta(hours=24))
    assert sim.in_session(user=USER, bot=BOT)
    clock.advance(timedelta(seconds=1))
    assert not sim.in_session(user=USER, bot=BOT)


async def test_inbound_event_reports_the_answer(sim: Simulator, fake_bot: FakeBot) -> None:
    fake_bot.reply_with("<Response><Message>yo</Message></Response>")
    with sim.subscribe() as events:
        result = await send_inbound(sim, user=USER, bot=BOT, body="hi")
        kinds = []
        while True:
            event = await events.get()
            kinds.append(event.kind)
            if event.kind is EventKind.INBOUND_SENT:
                break
    assert kinds == [EventKind.MESSAGE_CREATED, EventKind.MESSAGE_CREATED, EventKind.INBOUND_SENT]
    assert event.data["status_code"] == 200 and event.data["replies"] == [result.replies[0].sid]
    assert event.data["url"] == WEBHOOK and event.message == result.message


@pytest.mark.parametrize(
    "kwargs",
    [{"button": Choice("a", "A")}, {"location": HARROW}],
    ids=["button", "location"],
)
async def test_whatsapp_only_inputs_refused_on_sms(sim: Simulator, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="WhatsApp"):
        await send_inbound(sim, user=USER, bot=BOT, **kwargs)


async def test_webhook_url_is_required(make_sim: Callable[..., Simulator]) -> None:
    sim = make_sim(webhook_url=None)
    with pytest.raises(ValueError, match="webhook"):
        await send_inbound(sim, user=USER, bot=BOT, body="hi")
    await sim.http.aclose()


def test_parse_twiml() -> None:
    messages = parse_twiml(
        '<Response><Message to="+1" from="+2"><Body>a</Body><Body>b</Body>'
        "<Media>u1</Media><Media> </Media></Message><Redirect>/x</Redirect></Response>"
    )
    assert len(messages) == 1
    assert (messages[0].body, messages[0].media, messages[0].to, messages[0].from_) == ("ab", ("u1",), "+1", "+2")
    assert parse_twiml("<Response/>") == []
    with pytest.raises(ParseError):
        parse_twiml("<Say>hi</Say>")

"""Compliance rules: keywords, modes, and silence while opted out (over HTTP)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.compliance import is_revocation, keyword_of
from bot.messages import Channel, OptOutType
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import BOT_NUMBER, signed_client
from webhooks.app import create_app

USER = "+14155550123"


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("STOP", "STOP"),
        ("stop", "STOP"),
        ("  Stop!  ", "STOP"),
        ("...quit.", "QUIT"),
        ("Cancel", "CANCEL"),
        ("cancel my appointment", None),
        ("stop booking", None),
        ("", None),
    ],
)
def test_keyword_of(body: str, word: str | None) -> None:
    assert keyword_of(body) == word


@pytest.mark.parametrize(
    "body",
    ["please stop texting me", "Remove me from your list", "don't text me again", "unsubscribe me", "please opt out"],
)
def test_natural_language_revocation(body: str) -> None:
    assert is_revocation(body)


@pytest.mark.parametrize("body", ["stop booking", "cancel my appointment", "never mind", "cancel"])
def test_not_revocation(body: str) -> None:
    assert not is_revocation(body)


@pytest.fixture
def make_client(make_settings: Callable[..., Settings], redis_store: RedisStore) -> Callable[..., WebhookClient]:
    def make(**overrides: object) -> WebhookClient:
        return signed_client(create_app(make_settings(**overrides), store=redis_store))

    return make


async def say(client: WebhookClient, body: str, channel: Channel = Channel.SMS, **kw: object) -> list[str]:
    resp = await client.post("/twilio/messages", inbound_form(channel, USER, BOT_NUMBER, body, **kw))  # type: ignore[arg-type]
    assert resp.status_code == 200, resp.text
    return [b for b, _ in parse_twiml(resp.text)]


def key(channel: Channel = Channel.SMS) -> ConversationKey:
    return ConversationKey(channel, BOT_NUMBER, USER)


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE", " stop. "]
)
async def test_stop_words_on_sms_record_and_stay_silent(
    word: str, make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    assert await say(client, word) == []  # Twilio sends the confirmation itself
    assert await redis_store.is_opted_out(key())


async def test_bot_mode_confirms_keywords_on_sms(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client(sms_keyword_replies="bot")
    [stop] = await say(client, "STOP")
    assert "unsubscribed" in stop.lower()
    [start] = await say(client, "START")
    assert "welcome back" in start.lower()
    [help_] = await say(client, "HELP")
    assert "STOP" in help_


async def test_whatsapp_always_answers(make_client: Callable[..., WebhookClient], redis_store: RedisStore) -> None:
    client = make_client()  # default mode "twilio" applies to SMS only
    wa = Channel.WHATSAPP
    [stop] = await say(client, "stop", wa)
    assert "unsubscribed" in stop.lower()
    assert await redis_store.is_opted_out(key(wa))
    assert not await redis_store.is_opted_out(key(Channel.SMS))
    assert await say(client, "hello?", wa) == []
    [start] = await say(client, "START", wa)
    assert "welcome back" in start.lower()
    [help_] = await say(client, "help", wa)
    assert "Bright Smile Dental" in help_ and "555 010 0199" in help_ and "STOP" in help_


async def test_cancel_alone_opts_out_but_cancel_my_appointment_does_not(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    assert len(await say(client, "cancel my appointment")) == 1
    assert not await redis_store.is_opted_out(key())
    assert await say(client, "cancel") == []
    assert await redis_store.is_opted_out(key())


async def test_yes_is_an_answer_unless_opted_out(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client(sms_keyword_replies="bot")
    [answer] = await say(client, "yes")
    assert "welcome back" not in answer.lower()  # an ordinary answer, handled by the bot
    await say(client, "STOP")
    [welcome] = await say(client, "YES")
    assert "welcome back" in welcome.lower()
    assert not await redis_store.is_opted_out(key())


async def test_nothing_is_sent_while_opted_out(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    await say(client, "STOP")
    for body in ["hi", "book a cleaning", "what are your hours?"]:
        assert await say(client, body) == []
    state = await redis_store.load(key())
    assert state is not None and state.turns == 4  # they wrote; we remembered, said nothing
    # HELP is a keyword answer: allowed, and on SMS Twilio answers it.
    assert await say(client, "HELP") == []


async def test_natural_language_opt_out_is_confirmed_by_the_bot(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    [confirm] = await say(client, "please stop texting me")
    assert "unsubscribed" in confirm.lower()
    assert await redis_store.is_opted_out(key())


async def test_advanced_opt_out_type_is_honoured(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    form = inbound_form(Channel.SMS, USER, BOT_NUMBER, "ARRET")  # a custom keyword
    form["OptOutType"] = "STOP"
    resp = await client.post("/twilio/messages", form)
    assert parse_twiml(resp.text) == []
    assert await redis_store.is_opted_out(key())
    form = inbound_form(Channel.SMS, USER, BOT_NUMBER, "REPRENDRE")
    form["OptOutType"] = "START"
    await client.post("/twilio/messages", form)
    assert not await redis_store.is_opted_out(key())


async def test_whatsapp_button_named_cancel_is_not_an_opt_out(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    await say(client, "Cancel", Channel.WHATSAPP, button_payload="cancel_appt", button_text="Cancel")
    assert not await redis_store.is_opted_out(key(Channel.WHATSAPP))


@pytest.mark.parametrize("body", ["hi again", "hello again", "hey it's me again", "start over again"])
def test_greetings_with_again_are_not_keywords(body: str) -> None:
    assert keyword_of(body) is None
    assert not is_revocation(body)


async def test_hi_again_is_a_greeting_and_start_still_opts_in(
    make_client: Callable[..., WebhookClient], redis_store: RedisStore
) -> None:
    client = make_client()
    [greeting] = await say(client, "hi again", Channel.WHATSAPP)
    assert greeting.startswith("Hi") and "welcome back" not in greeting.lower()
    await say(client, "STOP", Channel.WHATSAPP)
    assert await redis_store.is_opted_out(key(Channel.WHATSAPP))
    # Opted out, "hi again" is not an opt-in: nothing is sent and nothing changes.
    assert await say(client, "hi again", Channel.WHATSAPP) == []
    assert await redis_store.is_opted_out(key(Channel.WHATSAPP))
    [welcome] = await say(client, "START", Channel.WHATSAPP)
    assert "welcome back" in welcome.lower()
    assert not await redis_store.is_opted_out(key(Channel.WHATSAPP))


@pytest.mark.parametrize(
    ("body", "opted_out", "expected"),
    [
        (" Stop! ", False, OptOutType.STOP),
        ("unstop", True, OptOutType.START),
        ("START", False, OptOutType.START),
        ("yes", True, OptOutType.START),
        ("yes", False, None),  # an answer to a question, not an opt-in
        ("info", False, OptOutType.HELP),
        ("stop booking", False, None),
    ],
)
def test_one_keyword_rule_for_the_bot_and_the_local_twilio(body: str, opted_out: bool,
                                                           expected: OptOutType | None) -> None:
    from bot.compliance import keyword_type
    from devtools.simulator import Simulator, SimulatorConfig
    from devtools.simulator.inbound import twilio_keyword

    assert keyword_type(body, opted_out=opted_out) is expected
    sim = Simulator(account_sid="AC" + "0" * 32, auth_token="t", config=SimulatorConfig())
    if opted_out:
        sim.opt_out(Channel.SMS, user="+14155550123", bot="+15005550006")
    assert twilio_keyword(sim, Channel.SMS, user="+14155550123", bot="+15005550006", body=body) is expected
    assert twilio_keyword(sim, Channel.WHATSAPP, user="+14155550123", bot="+15005550006", body=body) is None

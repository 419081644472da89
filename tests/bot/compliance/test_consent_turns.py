"""Consent over the real webhook path: the ledger, staff notices, 21610, HELP in both modes."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.messages import Channel
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import BOT_NUMBER, signed_client
from webhooks.app import create_app

USER = "+14155550123"
STAFF = "+14155550999"


@pytest.fixture
def make_app(
    make_settings: Callable[..., Settings], redis_store: RedisStore
) -> Callable[..., tuple[object, WebhookClient]]:
    def make(**overrides: object) -> tuple[object, WebhookClient]:
        app = create_app(make_settings(**overrides), store=redis_store)
        return app, signed_client(app)

    return make


async def say(client: WebhookClient, body: str, channel: Channel = Channel.SMS, sid: str | None = None) -> list[str]:
    resp = await client.post("/twilio/messages", inbound_form(channel, USER, BOT_NUMBER, body, message_sid=sid))
    assert resp.status_code == 200, resp.text
    return [b for b, _ in parse_twiml(resp.text)]


def ledger_of(app: object):  # type: ignore[no-untyped-def]
    return app.state.services.consent_ledger  # type: ignore[attr-defined]


async def test_every_change_is_in_the_ledger_with_its_source_and_words(
    make_app: Callable[..., tuple[object, WebhookClient]],
) -> None:
    app, client = make_app()
    await say(client, "please stop texting me", sid="SM" + "1" * 32)
    await say(client, "START", sid="SM" + "2" * 32)
    await say(client, "STOP", sid="SM" + "3" * 32)
    await say(client, "stop", Channel.WHATSAPP, sid="SM" + "4" * 32)
    await say(client, "hi", sid="SM" + "5" * 32)  # not a consent change: not recorded
    ledger = ledger_of(app)
    hasher = app.state.services.engine.compliance.hasher  # type: ignore[attr-defined]
    history = await ledger.history(hasher.hash(USER))
    assert [(e.action, e.channel.value, e.source, e.words) for e in history] == [
        ("opt_out", "sms", "natural_language", "stop texting me"),
        ("opt_in", "sms", "twilio_keyword", "START"),
        ("opt_out", "sms", "twilio_keyword", "STOP"),
        ("opt_out", "whatsapp", "bot_keyword", "STOP"),
    ]
    assert history[0].message_sid == "SM" + "1" * 32
    assert all(e.address == "+141******23" and USER not in e.to_json() for e in history)


async def test_a_retried_revocation_is_recorded_and_confirmed_once(
    make_app: Callable[..., tuple[object, WebhookClient]], redis_store: RedisStore,
) -> None:
    app, client = make_app()
    sid = "SM" + "7" * 32
    first = await say(client, "no more texts", sid=sid)
    again = await say(client, "no more texts", sid=sid)
    assert first == again and len(first) == 1
    assert len(await ledger_of(app).since(0)) == 1
    assert await redis_store.is_opted_out(ConversationKey(Channel.SMS, BOT_NUMBER, USER))


async def test_a_revocation_clears_the_flow_and_offered_choices(
    make_app: Callable[..., tuple[object, WebhookClient]], redis_store: RedisStore,
) -> None:
    _app, client = make_app()
    await say(client, "book a cleaning tomorrow at 3pm")
    key = ConversationKey(Channel.SMS, BOT_NUMBER, USER)
    before = await redis_store.load(key)
    assert before is not None and before.flow == "book" and before.data.get("choices")
    await say(client, "u can stop now")
    after = await redis_store.load(key)
    assert after is not None
    assert (after.flow, after.step, after.slots, after.data.get("choices")) == (None, None, {}, None)


async def test_bot_mode_sends_the_help_text_naming_the_business_on_sms(
    make_app: Callable[..., tuple[object, WebhookClient]],
) -> None:
    _app, client = make_app(sms_keyword_replies="bot")
    [help_] = await say(client, "HELP")
    assert "Bright Smile Dental" in help_ and "STOP" in help_
    # Twilio mode: Twilio answers HELP itself (its Advanced Opt-Out text, see `bot consent help-text`).
    _app, client = make_app()
    assert await say(client, "info") == []
    # A HELP word Twilio does not know is the bot's to answer, in both modes.
    [ayuda] = await say(client, "Ayuda")
    assert "Bright Smile Dental" in ayuda


async def test_a_21610_opt_out_is_recorded_as_platform_21610(
    make_app: Callable[..., tuple[object, WebhookClient]], redis_store: RedisStore,
) -> None:
    app, _client = make_app()
    suppressions = app.state.services.require_outbound().sender.suppressions  # type: ignore[attr-defined]
    key = ConversationKey(Channel.SMS, BOT_NUMBER, USER)
    assert await suppressions.record_error(key, 21610, source="status_callback", message_sid="SM" + "9" * 32)
    assert await redis_store.is_opted_out(key)
    await suppressions.record_error(key, 21610)  # already opted out: nothing new
    [event] = await ledger_of(app).since(0)
    assert (event.source, event.message_sid, event.action) == ("platform_21610", "SM" + "9" * 32, "opt_out")


def _transcript(tmp_path: Path, channel: str, steps: str) -> Path:
    path = tmp_path / f"{channel}.yaml"
    path.write_text(
        f'name: {channel} opt-out with an appointment\nchannel: {channel}\nuser: "{USER}"\n'
        f'now: "2026-03-02T09:00:00-05:00"\nturns:\n{steps}'
    )
    return path


@pytest.mark.parametrize(
    ("channel", "steps"),
    [
        ("sms", '  - user: "book a cleaning tomorrow at 3pm"\n  - user: "1"\n  - user: "CANCEL"\n'
                '  - user: "hello?"\n'),
        ("whatsapp", '  - user: "book a cleaning tomorrow at 3pm"\n  - button: "yes"\n'
                     '  - user: "i dont want these texts anymore, my gums are fine"\n  - user: "STOP"\n'),
    ],
)
async def test_staff_are_told_once_when_a_patient_with_an_appointment_opts_out(
    make_settings: Callable[..., Settings], tmp_path: Path, channel: str, steps: str
) -> None:
    from devtools.replay.runner import ReplayRunner
    from devtools.replay.transcript import load_transcripts

    report = await ReplayRunner(make_settings(staff_number=STAFF)).run(
        load_transcripts([_transcript(tmp_path, channel, steps)])
    )
    [result] = report.results
    assert result.status == "passed", result.failure
    to_staff = [m for step in result.steps for m in step.sent if m.to == STAFF]
    assert len(to_staff) == 1, [m.body for m in to_staff]
    notice = to_staff[0].body
    assert USER in notice and "cleaning" in notice and "Tue, Mar 3" in notice
    # The patient's own words never go to staff.
    assert "gums" not in notice and "CANCEL" not in notice


async def test_staff_are_not_told_without_an_appointment(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    from devtools.replay.runner import ReplayRunner
    from devtools.replay.transcript import load_transcripts

    path = _transcript(tmp_path, "sms", '  - user: "hi"\n  - user: "stop texting me"\n')
    report = await ReplayRunner(make_settings(staff_number=STAFF)).run(load_transcripts([path]))
    [result] = report.results
    assert result.status == "passed", result.failure
    assert [m for step in result.steps for m in step.sent if m.to == STAFF] == []


async def test_a_21610_of_a_patient_with_an_appointment_tells_staff_once(
    make_settings: Callable[..., Settings], redis_store: RedisStore
) -> None:
    from datetime import UTC, datetime

    from bot.clock import FrozenClock
    from tests.webhooks.test_app import KeptOutbox

    outbox = KeptOutbox()
    clock = FrozenClock(datetime(2026, 3, 2, 14, tzinfo=UTC))  # a Monday: "tomorrow at 3pm" is open
    app = create_app(make_settings(staff_number=STAFF), store=redis_store, outbox=outbox,  # type: ignore[arg-type]
                     clock=clock)
    client = signed_client(app)
    await say(client, "book a cleaning tomorrow at 3pm")
    assert "booked" in " ".join(await say(client, "1")).lower()
    suppressions = app.state.services.require_outbound().sender.suppressions
    key = ConversationKey(Channel.SMS, BOT_NUMBER, USER)
    await suppressions.record_error(key, 21610, source="send")  # a send-time 400: no MessageSid
    await suppressions.record_error(key, 21610, source="send")  # already opted out: nothing more
    to_staff = [r for r in outbox.sends if r.key.user == STAFF]
    assert len(to_staff) == 1 and "cleaning" in to_staff[0].body and USER in to_staff[0].body

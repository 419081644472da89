"""The sender through the official SDK against the simulator, on a real Redis."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.clock import FrozenClock
from bot.errors import ChannelSendError, RecipientOptedOutError
from bot.messages import Channel, Choice, TemplateMessage
from bot.outbound.errors import NetworkSendError, OutsideWindowError, RecipientUnreachableError, SendInProgressError
from bot.outbound.ledger import SendRecord, ref_for
from bot.outbound.models import SendRequest
from bot.outbound.suppression import unreachable_key
from bot.runtime import Runtime
from bot.storage import ConversationKey, RedisStore
from bot.storage.stores import Stores
from devtools.simulator import SimulatorConfig
from devtools.simulator.faults import ApiFault
from tests.bot.outbound.conftest import SMS_KEY, START, THIRD_PARTY_WARNINGS, USER, WA_KEY, Twilio, user_wrote
from tests.conftest import BOT_NUMBER, PUBLIC_URL
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

REMINDER = TemplateMessage("appointment_reminder", {"name": "Ana", "service": "cleaning",
                                                    "time": "Tue, Mar 3 at 3:00 PM"})


def sms(body: str = "Your appointment is confirmed.", key: ConversationKey = SMS_KEY, **kw: object) -> SendRequest:
    return SendRequest(key=key, body=body, idempotency_key=kw.pop("idem", "test:1"), **kw)  # type: ignore[arg-type]


def sender_of(runtime: Runtime):  # type: ignore[no-untyped-def]
    return runtime.require_outbound().sender


# -- the basics -------------------------------------------------------------------

async def test_sms_send_records_context_and_status_callback(runtime: Runtime, twilio: Twilio) -> None:
    result = await sender_of(runtime).send(sms(purpose="reminder"))
    [message] = twilio.sent()
    assert (result.sid, result.status, result.duplicate) == (message.sid, "queued", False)
    assert message.body == "Your appointment is confirmed." and message.from_ == BOT_NUMBER
    callback = urlsplit(message.status_callback or "")
    assert f"{callback.scheme}://{callback.netloc}{callback.path}" == f"{PUBLIC_URL}/twilio/status"
    assert parse_qs(callback.query)["ref"] == [ref_for("test:1")]
    record = await sender_of(runtime).ledger.message(message.sid)
    assert record is not None
    assert (record.key, record.idempotency_key, record.purpose, record.state) == (SMS_KEY, "test:1", "reminder", "sent")


async def test_same_idempotency_key_sends_once(runtime: Runtime, twilio: Twilio) -> None:
    first = await sender_of(runtime).send(sms())
    again = await sender_of(runtime).send(sms(body="a different body, same key"))
    assert again.duplicate and again.sid == first.sid
    assert len(twilio.sent()) == 1
    other = await sender_of(runtime).send(sms(idem="test:2"))
    assert other.sid != first.sid and len(twilio.sent()) == 2


async def test_sms_template_sends_the_text_fallback(runtime: Runtime, twilio: Twilio) -> None:
    result = await sender_of(runtime).send(SendRequest(key=SMS_KEY, template=REMINDER, idempotency_key="r:1"))
    [message] = twilio.sent()
    assert message.content_sid is None
    assert message.body.startswith("Hi Ana, this is a reminder of your cleaning appointment")
    assert result.template == "appointment_reminder"


async def test_no_twilio_client_is_a_clear_error(make_runtime: Callable[..., Runtime]) -> None:
    runtime = make_runtime()
    sender_of(runtime).client = None
    with pytest.raises(ChannelSendError, match="not open"):
        await sender_of(runtime).send(sms())


# -- retries ------------------------------------------------------------------------

async def test_a_429_and_a_500_then_success_send_exactly_once(runtime: Runtime, twilio: Twilio) -> None:
    twilio.faults.fail_next(ApiFault.too_many_requests(), ApiFault.server_error())
    result = await sender_of(runtime).send(sms())
    assert len(twilio.faults.creates) == 3 and twilio.faults.refused == 2
    assert [m.sid for m in twilio.sent()] == [result.sid]
    errors = runtime.metrics.outbound_errors
    assert errors.labels("20429", "true")._value.get() == 1
    assert errors.labels("20500", "true")._value.get() == 1


async def test_retries_are_bounded(make_runtime: Callable[..., Runtime], twilio: Twilio) -> None:
    runtime = make_runtime(outbound_max_attempts=3)
    twilio.faults.fail_next(*[ApiFault.server_error(503)] * 5)
    with pytest.raises(ChannelSendError) as info:
        await sender_of(runtime).send(sms())
    assert info.value.retryable and info.value.status == 503
    assert len(twilio.faults.creates) == 3 and twilio.sent() == []
    # The claim was released: a later try (a job retry) may send.
    assert (await sender_of(runtime).send(sms())).sid


async def test_21211_is_not_retried_and_marks_the_number(runtime: Runtime, twilio: Twilio,
                                                         redis_store: RedisStore) -> None:
    key = ConversationKey(Channel.SMS, BOT_NUMBER, "+15005550001")
    with pytest.raises(RecipientUnreachableError) as info:
        await sender_of(runtime).send(sms(key=key))
    assert (info.value.code, info.value.retryable, info.value.status) == (21211, False, 400)
    assert len(twilio.faults.creates) == 1
    assert await Stores.beside(redis_store).ledger.get(unreachable_key(key)) is not None
    # No further sends: refused without asking Twilio.
    with pytest.raises(RecipientUnreachableError) as refused:
        await sender_of(runtime).send(sms(key=key, idem="test:2"))
    assert refused.value.code == 21211 and refused.value.status is None
    assert len(twilio.faults.creates) == 1


async def test_network_errors_are_retryable(make_runtime: Callable[..., Runtime], twilio: Twilio) -> None:
    dead = twilio.sdk_client(base_url=f"http://127.0.0.1:{free_port()}")
    runtime = make_runtime(client=dead, outbound_max_attempts=2)
    with pytest.raises(NetworkSendError) as info:
        await sender_of(runtime).send(sms())
    assert info.value.retryable and not info.value.ambiguous


async def test_a_lost_answer_is_found_at_twilio_not_sent_again(make_runtime: Callable[..., Runtime],
                                                              twilio: Twilio) -> None:
    # Twilio creates the message but the answer comes after our timeout.
    runtime = make_runtime()
    sender_of(runtime).request_timeout = 0.2
    twilio.faults.delay_answers(0.6)
    result = await sender_of(runtime).send(sms())
    assert len(twilio.faults.creates) == 1  # no second create: the lookup found it
    assert [m.sid for m in twilio.sent()] == [result.sid]


async def test_a_claim_left_by_a_crash_is_reconciled(runtime: Runtime, twilio: Twilio, clock: FrozenClock) -> None:
    # An attempt that reached Twilio and died before recording the SID ...
    request = sms()
    sender = sender_of(runtime)
    await twilio.client.messages.create_async(to=USER, from_=BOT_NUMBER, body=request.body)
    stale = SendRecord.pending(request, token="dead", lease_seconds=0, claimed_at=clock.timestamp())
    assert await sender.ledger.claim(stale) is None
    # ... is completed from Twilio's record instead of sending again.
    result = await sender.send(request)
    assert len(twilio.sent()) == 1 and result.sid == twilio.sent()[0].sid
    assert (await sender.send(request)).duplicate


async def test_a_live_claim_means_in_progress(runtime: Runtime, twilio: Twilio, clock: FrozenClock) -> None:
    sender = sender_of(runtime)
    live = SendRecord.pending(sms(), token="other", lease_seconds=60, claimed_at=clock.timestamp())
    await sender.ledger.claim(live)
    with pytest.raises(SendInProgressError) as info:
        await sender.send(sms())
    assert info.value.retryable and twilio.sent() == []


# -- opt-out -----------------------------------------------------------------------

async def test_21610_opts_the_user_out_for_every_later_path(
    make_app: Callable[..., object], runtime: Runtime, twilio: Twilio, redis_store: RedisStore
) -> None:
    from devtools.simulator import send_inbound

    stopped = ConversationKey(Channel.SMS, BOT_NUMBER, "+15005550004")  # the magic opted-out number
    with pytest.raises(RecipientOptedOutError) as info:
        await sender_of(runtime).send(sms(key=stopped))
    assert (info.value.code, info.value.retryable) == (21610, False)
    assert await redis_store.is_opted_out(stopped)
    # The sender refuses without asking Twilio again ...
    with pytest.raises(RecipientOptedOutError):
        await sender_of(runtime).send(sms(key=stopped, idem="test:2"))
    assert len(twilio.faults.creates) == 1
    # ... and the engine's TwiML path answers nothing to them.
    make_app()
    result = await send_inbound(twilio.sim, user=stopped.user, bot=BOT_NUMBER, body="what are your hours?")
    assert result.status_code == 200 and result.replies == ()
    assert runtime.metrics.outbound.labels("sms", "reply", "refused_opted_out")._value.get() == 2


async def test_opted_out_users_get_compliance_answers_only(runtime: Runtime, twilio: Twilio,
                                                          redis_store: RedisStore) -> None:
    await redis_store.set_opted_out(SMS_KEY, True)
    with pytest.raises(RecipientOptedOutError):
        await sender_of(runtime).send(sms())
    assert twilio.sent() == []
    result = await sender_of(runtime).send(sms("You are unsubscribed.", idem="stop:1", compliance=True))
    assert result.sid and len(twilio.sent()) == 1


@pytest.mark.parametrize(
    ("to", "from_", "code", "error", "attempts"),
    [
        ("+15005550001", BOT_NUMBER, 21211, RecipientUnreachableError, 1),
        ("+15005550002", BOT_NUMBER, 21612, ChannelSendError, 1),
        ("+15005550003", BOT_NUMBER, 21408, ChannelSendError, 1),
        ("+15005550004", BOT_NUMBER, 21610, RecipientOptedOutError, 1),
        ("+15005550009", BOT_NUMBER, 21614, RecipientUnreachableError, 1),
        (USER, "+15005550001", 21212, ChannelSendError, 1),
        (USER, "+15005550007", 21606, ChannelSendError, 1),
        (USER, "+15005550008", 21611, ChannelSendError, 2),  # queue full: worth retrying
    ],
)
async def test_magic_numbers_through_the_sender(
    make_runtime: Callable[..., Runtime], twilio: Twilio, to: str, from_: str, code: int,
    error: type[ChannelSendError], attempts: int,
) -> None:
    runtime = make_runtime(outbound_max_attempts=2)
    with pytest.raises(error) as info:
        await sender_of(runtime).send(sms(key=ConversationKey(Channel.SMS, from_, to)))
    assert type(info.value) is error
    assert info.value.code == code and info.value.status == 400
    assert len(twilio.faults.creates) == attempts and twilio.sent() == []


async def test_the_magic_passing_sender_delivers(runtime: Runtime, twilio: Twilio) -> None:
    result = await sender_of(runtime).send(sms())
    await twilio.sim.drain()
    assert twilio.sim.get_message(result.sid).status == "delivered"  # type: ignore[union-attr]


# -- the WhatsApp window ---------------------------------------------------------------

async def test_inside_the_window_free_form(runtime: Runtime, twilio: Twilio, redis_store: RedisStore,
                                           clock: FrozenClock) -> None:
    await user_wrote(redis_store, WA_KEY, START)
    twilio.sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT_NUMBER, at=START)
    clock.advance(timedelta(hours=23))
    result = await sender_of(runtime).send(sms("See you soon", key=WA_KEY))
    [message] = twilio.sent()
    assert message.to == f"whatsapp:{USER}" and message.body == "See you soon" and message.content_sid is None
    assert not result.window_fallback


async def test_outside_the_window_only_a_template(runtime: Runtime, twilio: Twilio, redis_store: RedisStore,
                                                  clock: FrozenClock, registry: object) -> None:
    await user_wrote(redis_store, WA_KEY, START)
    clock.advance(timedelta(hours=25))
    with pytest.raises(OutsideWindowError) as info:
        await sender_of(runtime).send(sms("See you soon", key=WA_KEY))
    assert (info.value.code, info.value.retryable) == (63016, False) and twilio.sent() == []
    welcome = TemplateMessage("welcome_back", {"name": "Ana"})
    result = await sender_of(runtime).send(sms("See you soon", key=WA_KEY, fallback_template=welcome))
    [message] = twilio.sent()
    assert result.window_fallback and result.template == "welcome_back"
    assert message.content_sid == runtime.require_outbound().templates.get("welcome_back").content_sid
    assert json.loads(json.dumps(dict(message.content_variables))) == {"1": "Ana"}
    await twilio.sim.drain()
    assert twilio.sim.get_message(message.sid).status == "read"  # type: ignore[union-attr]


async def test_expired_state_counts_as_outside(runtime: Runtime, twilio: Twilio) -> None:
    # No conversation state at all (never wrote, or it expired): a template only.
    with pytest.raises(OutsideWindowError):
        await sender_of(runtime).send(sms("hello", key=WA_KEY))


@pytest.mark.parametrize("sim_config", [SimulatorConfig(step_delay=0, window_errors="reject")])
async def test_63016_at_send_is_retried_once_with_the_template(
    runtime: Runtime, twilio: Twilio, redis_store: RedisStore
) -> None:
    # Our record says the user just wrote; Twilio's says never: 63016 at create.
    await user_wrote(redis_store, WA_KEY, START)
    welcome = TemplateMessage("welcome_back", {"name": "Ana"})
    result = await sender_of(runtime).send(sms("free-form", key=WA_KEY, fallback_template=welcome))
    assert len(twilio.faults.creates) == 2
    [message] = twilio.sent()
    assert message.content_sid is not None and result.template == "welcome_back" and result.window_fallback
    # Without a template the typed error surfaces.
    with pytest.raises(OutsideWindowError):
        await sender_of(runtime).send(sms("free-form", key=WA_KEY, idem="test:2"))


async def test_choices_become_quick_reply_buttons_in_session(runtime: Runtime, twilio: Twilio,
                                                             redis_store: RedisStore) -> None:
    await user_wrote(redis_store, WA_KEY, START)
    twilio.sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT_NUMBER, at=START)
    choices = (Choice("yes", "Yes, book it"), Choice("no", "No"))
    result = await sender_of(runtime).send(sms("Book a cleaning Tue 3pm?", key=WA_KEY, choices=choices))
    [message] = twilio.sent()
    assert result.template == "quick_reply_2"
    assert dict(message.content_variables) == {"1": "Book a cleaning Tue 3pm?", "2": "Yes, book it", "3": "yes",
                                               "4": "No", "5": "no"}
    # Four choices are more than WhatsApp's three quick replies: a list picker, its items the choices.
    four = tuple(Choice(f"opt:{i}", f"Option {i}") for i in range(1, 5))
    listed = await sender_of(runtime).send(sms("Pick one", key=WA_KEY, choices=four, idem="test:2"))
    assert listed.template == "list_picker_4"
    assert twilio.sent()[-1].list_button == "Choose one"
    assert twilio.sent()[-1].buttons == four
    # An item title longer than a list row holds (24): numbered lines, which always work.
    long = (*four[:3], Choice("opt:4", "Option four, the longest one"))
    await sender_of(runtime).send(sms("Pick one", key=WA_KEY, choices=long, idem="test:4"))
    assert twilio.sent()[-1].body.endswith("3. Option 3\n4. Option four, the longest one")
    assert twilio.sent()[-1].content_sid is None
    # SMS: numbered lines too.
    await sender_of(runtime).send(sms("Book it?", choices=choices, idem="test:3"))
    assert twilio.sent()[-1].body == "Book it?\n1. Yes, book it\n2. No"


async def test_a_refused_button_template_still_sends_the_choices(runtime: Runtime, twilio: Twilio,
                                                                 redis_store: RedisStore) -> None:
    # A SID this account does not have (never created): Twilio answers 21655.
    from bot.outbound.templates import ContentTemplates

    sender = sender_of(runtime)
    sender.templates = ContentTemplates(
        t.model_copy(update={"content_sid": "HX" + "f" * 32}) if t.name == "quick_reply_2" else t
        for t in sender.templates
    )
    await user_wrote(redis_store, WA_KEY, START)
    twilio.sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT_NUMBER, at=START)
    choices = (Choice("yes", "Yes"), Choice("no", "No"))
    result = await sender_of(runtime).send(sms("Book it?", key=WA_KEY, choices=choices))
    [message] = twilio.sent()
    assert message.body == "Book it?\n1. Yes\n2. No" and result.template is None


async def test_the_window_takes_the_newer_of_the_turns_time_and_the_stored_one(
    redis_store: RedisStore, clock: FrozenClock
) -> None:
    from bot.outbound.window import WhatsAppWindow

    window = WhatsAppWindow(redis_store, clock)
    now = clock.timestamp()
    # Nothing stored: the turn's own time opens it (no read needed).
    assert await window.is_open(WA_KEY, last_inbound_at=now - 60)
    assert not await window.is_open(WA_KEY)
    # Stored recently: an old time from the caller does not close it.
    await user_wrote(redis_store, WA_KEY, clock.now() - timedelta(hours=1))
    assert await window.is_open(WA_KEY, last_inbound_at=now - 30 * 3600)
    # Both old: closed.
    await user_wrote(redis_store, WA_KEY, clock.now() - timedelta(hours=30))
    assert not await window.is_open(WA_KEY, last_inbound_at=now - 25 * 3600)

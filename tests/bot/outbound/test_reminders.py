"""Appointment reminders: due once, lead time configurable, never to opted-out users, never twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.appointments import AppointmentBook
from bot.clock import FrozenClock
from bot.messages import Channel
from bot.outbound.outbox import InlineOutbox
from bot.outbound.suppression import unreachable_key
from bot.runtime import Runtime
from bot.storage import ConversationKey, RedisStore
from bot.storage.stores import Stores
from tests.bot.outbound.conftest import START, THIRD_PARTY_WARNINGS, Twilio
from tests.conftest import BOT_NUMBER

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

ANA = ConversationKey(Channel.WHATSAPP, BOT_NUMBER, "+14155550101")
BEN = ConversationKey(Channel.SMS, BOT_NUMBER, "+14155550102")
CAL = ConversationKey(Channel.SMS, BOT_NUMBER, "+14155550103")  # opted out
DEE = ConversationKey(Channel.SMS, BOT_NUMBER, "+14155550104")  # unreachable


async def run(runtime: Runtime) -> None:
    """What ``run: reminders`` does in a transcript: the job, then the outbox."""
    await runtime.jobs["reminders"]()
    outbox = runtime.require_outbound().outbox
    assert isinstance(outbox, InlineOutbox)
    await outbox.drain()


async def test_reminders_once_each_never_to_suppressed_users(
    runtime: Runtime, twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    book = AppointmentBook(Stores.beside(redis_store).appointments)
    tomorrow = START + timedelta(days=1, hours=6)  # 2026-03-03 15:00 UTC, 10 AM in New York
    ana = await book.add(ANA, service="cleaning", start=tomorrow, duration_minutes=60, name="Ana", now=START)
    await book.add(BEN, service="checkup", start=tomorrow + timedelta(hours=1), duration_minutes=30, name="Ben",
                   now=START)
    await book.add(CAL, service="cleaning", start=tomorrow + timedelta(hours=2), duration_minutes=60, now=START)
    await book.add(DEE, service="cleaning", start=tomorrow - timedelta(hours=1), duration_minutes=60, now=START)
    later = await book.add(BEN, service="cleaning", start=START + timedelta(days=3), duration_minutes=60,
                           name="Ben", now=START)
    cancelled = await book.add(ANA, service="checkup", start=tomorrow + timedelta(hours=3), duration_minutes=30,
                               now=START)
    await book.cancel(cancelled, now=START)
    await redis_store.set_opted_out(CAL, True)
    await Stores.beside(redis_store).ledger.set(unreachable_key(DEE), '{"code": 30006}')

    await run(runtime)
    assert twilio.sent() == []  # the first is 30 h away
    clock.advance(timedelta(hours=7))
    await run(runtime)
    sent = {m.user: m for m in twilio.sent()}
    assert set(sent) == {ANA.user, BEN.user}
    # WhatsApp: the approved template with name, service and time (business time zone).
    reminder = runtime.require_outbound().templates.get("appointment_reminder")
    assert sent[ANA.user].content_sid == reminder.content_sid
    assert dict(sent[ANA.user].content_variables) == {"1": "Ana", "2": "cleaning", "3": "Tue, Mar 3 at 10:00 AM"}
    # SMS: the text fallback.
    assert sent[BEN.user].content_sid is None
    assert sent[BEN.user].body.startswith("Hi Ben, this is a reminder of your checkup appointment")

    # Again, and again later: nothing twice.
    await run(runtime)
    clock.advance(timedelta(hours=2))
    await run(runtime)
    assert len(twilio.sent()) == 2

    # Two days on, the later appointment comes due, once.
    clock.advance(timedelta(days=2))
    await run(runtime)
    await run(runtime)
    users = [m.user for m in twilio.sent()]
    # The first two went out in one run, concurrently (any order); the later one after them.
    assert sorted(users[:2]) == sorted([ANA.user, BEN.user]) and users[2:] == [BEN.user]
    assert later.id != ana.id


async def test_a_moved_appointment_is_reminded_of_its_new_time(
    runtime: Runtime, twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    book = AppointmentBook(Stores.beside(redis_store).appointments)
    appt = await book.add(BEN, service="cleaning", start=START + timedelta(hours=20), duration_minutes=60,
                          name="Ben", now=START)
    await run(runtime)
    moved = await book.move(appt, START + timedelta(days=2), now=clock.now())
    clock.advance(timedelta(days=1, hours=1))
    await run(runtime)
    await run(runtime)
    bodies = [m.body for m in twilio.sent()]
    assert len(bodies) == 2 and "Mar 3" in bodies[0] and "Mar 4" in bodies[1]
    assert moved.id == appt.id


async def test_booked_within_the_lead_time_gets_no_day_before_reminder(
    runtime: Runtime, twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    await run(runtime)  # the cursor is at START + 24 h
    book = AppointmentBook(Stores.beside(redis_store).appointments)
    await book.add(BEN, service="cleaning", start=START + timedelta(hours=5), duration_minutes=60, now=START)
    await run(runtime)
    assert twilio.sent() == []


async def test_the_lead_time_is_a_setting(make_runtime: Callable[..., Runtime], twilio: Twilio,
                                          redis_store: RedisStore, clock: FrozenClock) -> None:
    runtime = make_runtime(reminder_lead_hours=2)
    book = AppointmentBook(Stores.beside(redis_store).appointments)
    await book.add(BEN, service="cleaning", start=START + timedelta(hours=5), duration_minutes=60, now=START)
    await run(runtime)
    assert twilio.sent() == []
    clock.advance(timedelta(hours=3, minutes=30))
    await run(runtime)
    assert len(twilio.sent()) == 1


async def test_reminders_go_to_verified_contacts_as_well_or_instead(
    make_runtime: Callable[..., Runtime], twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    from bot.contacts.store import ContactBook

    runtime = make_runtime(twilio_verify_service_sid="VA" + "0" * 32)
    stores = Stores.beside(redis_store)
    book, contacts = AppointmentBook(stores.appointments), ContactBook(stores.ledger)
    tomorrow = START + timedelta(days=1, hours=6)
    await book.add(BEN, service="checkup", start=tomorrow, duration_minutes=30, name="Ben", now=START)
    await book.add(CAL, service="cleaning", start=tomorrow + timedelta(hours=1), duration_minutes=60, now=START)
    await contacts.add(BEN, "+14155550199", mode="also", at=START)
    await contacts.add(CAL, "+14155550188", mode="instead", at=START, channel="sms")
    await contacts.add(CAL, "+14155550177", mode="also", at=START)  # opts out below
    await redis_store.set_opted_out(ConversationKey(Channel.SMS, BOT_NUMBER, "+14155550177"), True)

    clock.advance(timedelta(hours=7))
    await run(runtime)
    await run(runtime)  # never twice
    sent = sorted(m.user for m in twilio.sent())
    # Ben and his contact; not Cal (a contact replaces Cal's own number), Cal's contact, never the opted-out one.
    assert sent == sorted([BEN.user, "+14155550199", "+14155550188"])
    assert all(m.body.startswith("Hi") for m in twilio.sent())

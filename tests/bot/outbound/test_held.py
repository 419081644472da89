"""Quiet hours through the real outbound path: broadcasts, late answers and reminders held, then released
by the (simulated) clock, re-checked against opt-outs, never sent twice; prompt answers never held."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FrozenClock
from bot.messages import Channel
from bot.outbound.broadcast import load_recipients, queue_broadcast
from bot.outbound.models import SendRequest
from bot.outbound.outbox import InlineOutbox
from bot.runtime import Runtime
from bot.storage import ConversationKey
from tests.bot.outbound.conftest import THIRD_PARTY_WARNINGS, Twilio
from tests.conftest import BOT_NUMBER

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

NY = ZoneInfo("America/New_York")
NEW_YORKER = "+12125550123"
CALIFORNIAN = "+14155550123"


def recipients(tmp_path: Path, *numbers: str) -> Path:
    path = tmp_path / "r.csv"
    path.write_text("to,name\n" + "".join(f"{n},P{i}\n" for i, n in enumerate(numbers)))
    return path


def held_count(runtime: Runtime, reason: str) -> float:
    value = runtime.metrics.registry.get_sample_value("bot_outbound_held_total", {"reason": reason})
    return value or 0.0


async def drain(runtime: Runtime) -> None:
    outbox = runtime.require_outbound().outbox
    assert isinstance(outbox, InlineOutbox)
    await outbox.drain()


@pytest.fixture
def runtime(make_runtime: Callable[..., Runtime]) -> Runtime:
    return make_runtime(quiet_hours=True)


async def test_a_broadcast_at_half_past_ten_at_night_waits_until_eight(
    runtime: Runtime, clock: FrozenClock, twilio: Twilio, tmp_path: Path,
) -> None:
    clock.set(datetime(2026, 3, 2, 22, 30, tzinfo=NY))
    outbound = runtime.require_outbound()
    report = await queue_broadcast(outbound, load_recipients(recipients(tmp_path, NEW_YORKER)),
                                   template="welcome_back", campaign="late", rate=10, bot=BOT_NUMBER)
    assert report.queued == 1
    assert report.held == {"08:00 America/New_York (Tue Mar 3)": 1}
    assert held_count(runtime, "quiet_hours") == 1
    await drain(runtime)
    assert twilio.sent() == []  # nothing at night

    clock.set(datetime(2026, 3, 3, 7, 59, tzinfo=NY))
    await drain(runtime)
    assert twilio.sent() == []
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=NY))  # the simulator's clock moves: released
    await drain(runtime)
    assert [m.user for m in twilio.sent()] == [NEW_YORKER]
    clock.advance(timedelta(hours=1))
    await drain(runtime)
    assert len(twilio.sent()) == 1  # never twice
    assert (await outbound.campaigns.summary("late")).sent == 1


async def test_each_recipient_in_their_own_time_zone(
    runtime: Runtime, clock: FrozenClock, twilio: Twilio, tmp_path: Path,
) -> None:
    # 8:30 in New York is 5:30 in San Francisco.
    clock.set(datetime(2026, 3, 3, 8, 30, tzinfo=NY))
    report = await queue_broadcast(runtime.require_outbound(),
                                   load_recipients(recipients(tmp_path, NEW_YORKER, CALIFORNIAN)),
                                   template="welcome_back", campaign="coast", rate=10, bot=BOT_NUMBER)
    assert report.held == {"08:00 America/Los_Angeles (Tue Mar 3)": 1}
    await drain(runtime)
    assert [m.user for m in twilio.sent()] == [NEW_YORKER]
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=ZoneInfo("America/Los_Angeles")))
    await drain(runtime)
    assert sorted(m.user for m in twilio.sent()) == sorted([NEW_YORKER, CALIFORNIAN])


async def test_someone_who_opts_out_while_held_is_never_sent_to(
    runtime: Runtime, clock: FrozenClock, twilio: Twilio, tmp_path: Path,
) -> None:
    clock.set(datetime(2026, 3, 2, 23, 0, tzinfo=NY))
    outbound = runtime.require_outbound()
    await queue_broadcast(outbound, load_recipients(recipients(tmp_path, NEW_YORKER)),
                          template="welcome_back", campaign="stop", rate=10, bot=BOT_NUMBER)
    await runtime.store.set_opted_out(ConversationKey(Channel.SMS, BOT_NUMBER, NEW_YORKER), True)
    clock.set(datetime(2026, 3, 3, 9, 0, tzinfo=NY))
    await drain(runtime)
    assert twilio.sent() == []
    assert (await outbound.campaigns.summary("stop")).skipped == {"opted_out": 1}


async def test_an_answer_to_what_the_person_just_sent_is_never_held(
    runtime: Runtime, clock: FrozenClock, twilio: Twilio,
) -> None:
    clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=NY))
    sender = runtime.require_outbound().sender
    key = ConversationKey(Channel.SMS, BOT_NUMBER, NEW_YORKER)
    await sender.send(SendRequest(key=key, body="Sure, here you go", idempotency_key="reply:now",
                                  last_inbound_at=clock.timestamp() - 20))
    assert [m.body for m in twilio.sent()] == ["Sure, here you go"]
    # The same answer a quarter of an hour late is one the bot starts: held until morning.
    from bot.outbound.errors import SendHeld

    with pytest.raises(SendHeld) as held:
        await sender.send(SendRequest(key=key, body="Sorry for the wait", idempotency_key="reply:late",
                                      last_inbound_at=clock.timestamp() - 15 * 60))
    assert held.value.hold.local_release() == datetime(2026, 3, 3, 8, 0, tzinfo=NY)
    gate = sender.quiet
    assert gate is not None
    [waiting] = await gate.held(key)
    assert (waiting.preview, waiting.reason) == ("Sorry for the wait", "quiet_hours")
    clock.set(datetime(2026, 3, 3, 8, 0, tzinfo=NY))
    await drain(runtime)
    assert [m.body for m in twilio.sent()] == ["Sure, here you go", "Sorry for the wait"]
    assert await gate.held(key) == []


async def test_a_reminder_that_would_fall_before_eight_goes_the_evening_before(
    make_runtime: Callable[..., Runtime], clock: FrozenClock, twilio: Twilio,
) -> None:
    runtime = make_runtime(quiet_hours=True)
    outbound = runtime.require_outbound()
    book = outbound.reminders.book
    clock.set(datetime(2026, 3, 2, 12, 0, tzinfo=NY))
    key = ConversationKey(Channel.SMS, BOT_NUMBER, NEW_YORKER)
    # 7:30 on Wednesday: 24 h before is 7:30 on Tuesday, quiet hours.
    appt = await book.add(key, service="cleaning", start=datetime(2026, 3, 4, 7, 30, tzinfo=NY),
                          duration_minutes=60, name="Ana", now=clock.now())
    assert outbound.reminders.send_time(appt).astimezone(NY) == datetime(2026, 3, 2, 20, 59, tzinfo=NY)
    await outbound.reminders.run()
    await drain(runtime)
    assert twilio.sent() == []
    clock.set(datetime(2026, 3, 2, 20, 59, tzinfo=NY))
    await outbound.reminders.run()
    await drain(runtime)
    assert [m.user for m in twilio.sent()] == [NEW_YORKER]
    # At the usual time the next morning nothing more goes out.
    clock.set(datetime(2026, 3, 3, 7, 30, tzinfo=NY))
    await outbound.reminders.run()
    clock.set(datetime(2026, 3, 3, 8, 30, tzinfo=NY))
    await outbound.reminders.run()
    await drain(runtime)
    assert len(twilio.sent()) == 1

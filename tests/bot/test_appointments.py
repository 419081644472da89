"""The appointment book over every store: booking, overlaps, moving, cancelling, due lookups."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.appointments import AppointmentBook, SlotTakenError
from bot.messages import Channel
from bot.storage import ConversationKey, ConversationStore
from bot.storage.stores import Stores

NY = ZoneInfo("America/New_York")
ANA = ConversationKey(Channel.SMS, "+15005550006", "+14155550001")
BEN = ConversationKey(Channel.WHATSAPP, "+15005550006", "+14155550002")
NOW = datetime(2026, 3, 2, 9, tzinfo=NY)


async def test_book_list_and_overlap(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    appt = await book.add(ANA, service="cleaning", start=ten, duration_minutes=60, name="Ana", now=NOW)
    assert [a.id for a in await book.upcoming_for(ANA, now=NOW)] == [appt.id]
    assert await book.upcoming_for(BEN, now=NOW) == []
    with pytest.raises(SlotTakenError):
        await book.add(BEN, service="checkup", start=ten + timedelta(minutes=30), duration_minutes=30, now=NOW)
    # Back to back is fine.
    await book.add(BEN, service="checkup", start=ten + timedelta(minutes=60), duration_minutes=30, now=NOW)
    assert not await book.is_free("+15005550006", ten, 15)


async def test_concurrent_bookings_of_one_slot_only_one_wins(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    keys = [ConversationKey(Channel.SMS, "+15005550006", f"+1415555{i:04d}") for i in range(5)]
    results = await asyncio.gather(
        *(book.add(k, service="cleaning", start=ten, duration_minutes=60, now=NOW) for k in keys),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, SlotTakenError) for r in results if isinstance(r, Exception))


async def test_move_cancel_and_due(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    start = datetime(2026, 3, 4, 14, tzinfo=NY)
    appt = await book.add(ANA, service="checkup", start=start, duration_minutes=30, now=NOW)
    moved = await book.move(appt, start + timedelta(days=1), now=NOW)
    assert moved.start == (start + timedelta(days=1)).astimezone(UTC)
    assert await book.is_free("+15005550006", start, 30)
    due = await book.due_between(start + timedelta(hours=23), start + timedelta(days=1, hours=1))
    assert [a.id for a in due] == [appt.id]
    await book.cancel(moved, now=NOW)
    assert await book.upcoming_for(ANA, now=NOW) == []
    assert await book.due_between(start, start + timedelta(days=2)) == []
    stored = await book.get(appt.id)
    assert stored is not None and stored.status == "cancelled"


async def test_past_appointments_are_not_upcoming(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    await book.add(ANA, service="checkup", start=NOW + timedelta(hours=1), duration_minutes=30, now=NOW)
    assert len(await book.upcoming_for(ANA, now=NOW)) == 1
    assert await book.upcoming_for(ANA, now=NOW + timedelta(hours=2)) == []


async def test_moving_within_the_day_may_overlap_its_own_old_time(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    appt = await book.add(ANA, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    moved = await book.move(appt, ten + timedelta(minutes=30), now=NOW)
    busy = await book.busy("+15005550006", ten)
    assert [(b.id, b.start) for b in busy] == [(appt.id, moved.start)]
    assert await book.is_free("+15005550006", ten, 30)  # 10:00-10:30 is free again
    assert not await book.is_free("+15005550006", ten + timedelta(minutes=60), 30)


async def test_a_lost_race_leaves_no_record_behind(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    await book.add(ANA, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    with pytest.raises(SlotTakenError):
        await book.add(BEN, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    assert await book.upcoming_for(BEN, now=NOW) == []
    assert len(await book.on_day("+15005550006", ten)) == 1

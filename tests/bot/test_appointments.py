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


class Chairs:
    """A resource plan: two chairs; whitening needs chair-2 (the lamp is there)."""

    resource_keys = ("chair-1", "chair-2")

    def resources_for(self, service: str) -> tuple[str, ...]:
        return ("chair-2",) if service == "whitening" else self.resource_keys


async def test_parallel_bookings_take_the_free_resources(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY, resources=Chairs())
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    keys = [ConversationKey(Channel.SMS, "+15005550006", f"+1415555{i:04d}") for i in range(5)]
    results = await asyncio.gather(
        *(book.add(k, service="cleaning", start=ten, duration_minutes=60, now=NOW) for k in keys),
        return_exceptions=True,
    )
    booked = [r for r in results if not isinstance(r, BaseException)]
    assert sorted(a.resource for a in booked) == ["chair-1", "chair-2"]  # two chairs, two bookings
    assert all(isinstance(r, SlotTakenError) for r in results if isinstance(r, BaseException))
    assert not await book.is_free("+15005550006", ten, 30, service="cleaning")
    # What the day looks like: both chairs busy at ten, free at eleven.
    assert sorted(b.resource for b in await book.busy("+15005550006", ten)) == ["chair-1", "chair-2"]
    assert await book.free_resources("+15005550006", ten + timedelta(hours=1), 60) == ["chair-1", "chair-2"]
    # The stored record says which chair.
    again = await book.get(booked[0].id)
    assert again is not None and again.resource == booked[0].resource


async def test_a_service_books_only_the_resources_able_to_do_it(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY, resources=Chairs())
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    white = await book.add(ANA, service="whitening", start=ten, duration_minutes=90, now=NOW)
    assert white.resource == "chair-2"
    assert await book.is_free("+15005550006", ten, 30, service="cleaning")  # chair-1 is free
    assert not await book.is_free("+15005550006", ten, 30, service="whitening")
    with pytest.raises(SlotTakenError):
        await book.add(BEN, service="whitening", start=ten + timedelta(minutes=30), duration_minutes=60, now=NOW)
    cleaning = await book.add(BEN, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    assert cleaning.resource == "chair-1"
    # Cancelling frees its chair for the next one.
    await book.cancel(white, now=NOW)
    assert (await book.add(ANA, service="whitening", start=ten, duration_minutes=90, now=NOW)).resource == "chair-2"


async def test_a_move_keeps_its_resource_when_free_and_changes_it_when_not(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY, resources=Chairs())
    ten, noon = datetime(2026, 3, 3, 10, tzinfo=NY), datetime(2026, 3, 3, 12, tzinfo=NY)
    ana = await book.add(ANA, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    ben = await book.add(BEN, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    assert {ana.resource, ben.resource} == {"chair-1", "chair-2"}
    moved = await book.move(ben, noon, now=NOW)
    assert moved.resource == ben.resource  # its chair is free at noon: kept
    blocker = ConversationKey(Channel.SMS, "+15005550006", "+14155550009")
    held = await book.add(blocker, service="cleaning", start=noon + timedelta(hours=2), duration_minutes=60, now=NOW)
    assert held.resource == "chair-1"  # the first free one
    moved_again = await book.move(moved, noon + timedelta(hours=2), now=NOW)
    assert moved_again.resource == "chair-2"  # chair-1 is taken then: the move changes chair
    # One hold per appointment, never two.
    assert sorted(b.id for b in await book.busy("+15005550006", noon)).count(ben.id) == 1
    # Moving to another day frees the old day's chair.
    tomorrow = await book.move(moved_again, ten + timedelta(days=1), now=NOW)
    assert ben.id not in {b.id for b in await book.busy("+15005550006", noon)}
    assert [b.id for b in await book.busy("+15005550006", tomorrow.start)] == [ben.id]
    assert [a.id for a in await book.upcoming_for(BEN, now=NOW)] == [ben.id]


async def test_without_resources_one_appointment_at_a_time(store: ConversationStore) -> None:
    book = AppointmentBook(Stores.beside(store).appointments, NY)
    ten = datetime(2026, 3, 3, 10, tzinfo=NY)
    appt = await book.add(ANA, service="cleaning", start=ten, duration_minutes=60, now=NOW)
    assert appt.resource == "default"
    with pytest.raises(SlotTakenError):
        await book.add(BEN, service="cleaning", start=ten, duration_minutes=60, now=NOW)

"""Appointment status over every store: booked → confirmed → completed, or cancelled / no-show, each change
recorded with when and by whom; the day's list and the figures read it back."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.appointments import Appointment, AppointmentBook
from bot.confirmations.figures import figures_between
from bot.confirmations.status import Source, Status, StatusChangeError
from bot.messages import Channel
from bot.storage import ConversationKey
from bot.storage.stores import Stores

NY = ZoneInfo("America/New_York")
ANA = ConversationKey(Channel.SMS, "+15005550006", "+14155550001")
BEN = ConversationKey(Channel.WHATSAPP, "+15005550006", "+14155550002")
NOW = datetime(2026, 3, 2, 9, tzinfo=NY)
TEN = datetime(2026, 3, 3, 10, tzinfo=NY)


@pytest.fixture
def book(stores: Stores) -> AppointmentBook:
    return AppointmentBook(stores.appointments, NY)


async def test_a_confirmation_is_stored_with_its_time_and_source(book: AppointmentBook) -> None:
    appt = await book.add(ANA, service="cleaning", start=TEN, duration_minutes=60, name="Ana", now=NOW)
    assert appt.status == Status.BOOKED
    later = NOW + timedelta(hours=20)
    confirmed = await book.set_status(appt, Status.CONFIRMED, now=later, source=Source.BUTTON)
    stored = await book.get(appt.id)
    assert stored is not None and stored.status == Status.CONFIRMED
    assert [(c.status, c.at, c.source) for c in stored.changes] == [
        (Status.BOOKED, NOW.timestamp(), Source.REPLY), (Status.CONFIRMED, later.timestamp(), Source.BUTTON)]
    # Confirming again changes nothing (a second "C", a second tap).
    again = await book.set_status(confirmed, Status.CONFIRMED, now=later + timedelta(hours=1), source=Source.REPLY)
    assert again.changes == confirmed.changes
    # Still upcoming: listed, reminded, movable.
    assert [a.id for a in await book.upcoming_for(ANA, now=NOW)] == [appt.id]


async def test_a_moved_confirmation_is_booked_again_and_cancelled_stays_cancelled(book: AppointmentBook) -> None:
    appt = await book.add(ANA, service="cleaning", start=TEN, duration_minutes=60, now=NOW)
    appt = await book.set_status(appt, Status.CONFIRMED, now=NOW, source=Source.REPLY)
    moved = await book.move(appt, TEN + timedelta(days=1), now=NOW)
    assert moved.status == Status.BOOKED  # the confirmation was for the old time
    cancelled = await book.set_status(moved, Status.CANCELLED, now=NOW, source=Source.STAFF)
    assert cancelled.status == Status.CANCELLED and cancelled.changes[-1].source == Source.STAFF
    assert await book.upcoming_for(ANA, now=NOW) == []
    assert await book.is_free(ANA.bot, TEN + timedelta(days=1), 60)  # its time is free again
    with pytest.raises(StatusChangeError, match="cancelled cannot become completed"):
        await book.set_status(cancelled, Status.COMPLETED, now=NOW, source=Source.STAFF)


async def test_staff_may_correct_a_visits_outcome(book: AppointmentBook) -> None:
    appt = await book.add(ANA, service="cleaning", start=TEN, duration_minutes=60, now=NOW)
    after = TEN + timedelta(hours=2)
    missed = await book.set_status(appt, Status.NO_SHOW, now=after, source=Source.STAFF)
    assert await book.upcoming_for(ANA, now=NOW) == []  # a no-show is not still to come
    came = await book.set_status(missed, Status.COMPLETED, now=after, source=Source.STAFF)
    assert [c.status for c in came.changes] == [Status.BOOKED, Status.NO_SHOW, Status.COMPLETED]
    with pytest.raises(StatusChangeError):
        await book.set_status(came, Status.CONFIRMED, now=after, source=Source.REPLY)


async def test_a_days_list_has_every_status_and_moves_with_the_appointment(book: AppointmentBook) -> None:
    a = await book.add(ANA, service="cleaning", start=TEN, duration_minutes=60, now=NOW)
    b = await book.add(BEN, service="checkup", start=TEN + timedelta(hours=2), duration_minutes=30, now=NOW)
    c = await book.add(BEN, service="checkup", start=TEN - timedelta(hours=1), duration_minutes=30, now=NOW)
    await book.cancel(c, now=NOW)
    await book.set_status(b, Status.CONFIRMED, now=NOW, source=Source.REPLY)
    day = date(2026, 3, 3)
    assert [(x.id, x.status) for x in await book.on_date(day)] == [
        (c.id, Status.CANCELLED), (a.id, Status.BOOKED), (b.id, Status.CONFIRMED)]
    assert [x.id for x in await book.on_date(day, status=Status.CONFIRMED)] == [b.id]
    await book.move(a, TEN + timedelta(days=1), now=NOW)
    assert [x.id for x in await book.on_date(day)] == [c.id, b.id]
    assert [x.id for x in await book.on_date(date(2026, 3, 4))] == [a.id]


async def test_figures_count_confirmations_and_no_shows(book: AppointmentBook) -> None:
    made: list[Appointment] = []
    for n in range(5):
        made.append(await book.add(ConversationKey(Channel.SMS, "+15005550006", f"+141555501{n:02d}"),
                                   service="checkup", start=TEN + timedelta(hours=n), duration_minutes=30, now=NOW))
    after = TEN + timedelta(hours=8)
    one = await book.set_status(made[0], Status.CONFIRMED, now=NOW, source=Source.REPLY)
    await book.set_status(one, Status.COMPLETED, now=after, source=Source.STAFF)
    two = await book.set_status(made[1], Status.CONFIRMED, now=NOW, source=Source.BUTTON)
    await book.set_status(two, Status.NO_SHOW, now=after, source=Source.STAFF)
    await book.set_status(made[2], Status.COMPLETED, now=after, source=Source.STAFF)
    await book.cancel(made[3], now=NOW)
    figures = await figures_between(book, date(2026, 3, 1), date(2026, 3, 5))
    assert figures.total == 5
    assert figures.by_status == {"completed": 2, "no-show": 1, "cancelled": 1, "booked": 1}
    assert figures.confirmation_rate == pytest.approx(2 / 4)  # confirmed twice, of the 4 not cancelled
    assert figures.no_show_rate == pytest.approx(1 / 3)
    assert "no-show rate: 33% (1 of 3 visits)" in figures.lines()
    empty = await figures_between(book, date(2026, 4, 1), date(2026, 4, 2))
    assert empty.confirmation_rate is None and "confirmation rate: n/a (0 of 0 not cancelled)" in empty.lines()


def test_statuses_are_read_forgivingly_and_unknown_ones_named() -> None:
    assert Status.parse(" No_Show ") == Status.NO_SHOW
    assert Status.parse("COMPLETED") == Status.COMPLETED
    with pytest.raises(StatusChangeError, match="unknown status 'done'; one of: booked, confirmed"):
        Status.parse("done")


def test_older_records_without_changes_still_load() -> None:
    raw = ('{"id":"a1","channel":"sms","bot":"+15005550006","user":"+14155550001","service":"cleaning",'
           '"start":"2026-03-03T15:00:00+00:00","duration_minutes":60,"name":null,"status":"booked",'
           '"resource":"default"}')
    appt = Appointment.from_json(raw)
    assert appt.status == Status.BOOKED and appt.changes == ()
    assert Appointment.from_json(appt.to_json()) == appt


async def test_each_status_reached_is_counted_once_in_the_metric(book: AppointmentBook) -> None:
    from prometheus_client import generate_latest

    from bot.confirmations.figures import status_counter
    from bot.observability import Metrics

    metrics = Metrics()
    book.observers.append(status_counter(metrics.appointments))
    appt = await book.add(ANA, service="cleaning", start=TEN, duration_minutes=60, now=NOW)
    appt = await book.set_status(appt, Status.CONFIRMED, now=NOW, source=Source.REPLY)
    appt = await book.set_status(appt, Status.CONFIRMED, now=NOW, source=Source.REPLY)  # no change, not counted
    appt = await book.move(appt, TEN + timedelta(hours=1), now=NOW)  # a reschedule is not a status
    await book.set_status(appt, Status.NO_SHOW, now=NOW, source=Source.STAFF)
    text = generate_latest(metrics.registry).decode()
    assert 'bot_appointments_total{status="booked"} 1.0' in text
    assert 'bot_appointments_total{status="confirmed"} 1.0' in text
    assert 'bot_appointments_total{status="no-show"} 1.0' in text
    assert 'status="rescheduled"' not in text

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from bot.business import Business
from bot.nlu.slots import Slots, extract_slots
from tests.bot.nlu.conftest import MONDAY_9AM, NY


def slots(text: str, business: Business, now: datetime = MONDAY_9AM) -> Slots:
    return extract_slots(text, now=now, business=business)


def test_book_a_cleaning_tomorrow_at_3pm(business: Business) -> None:
    found = slots("book a cleaning tomorrow at 3pm", business)
    assert found.service == "cleaning"
    assert (found.date, found.time) == (date(2026, 3, 3), time(15, 0))
    assert found.datetime == datetime(2026, 3, 3, 15, 0, tzinfo=NY)
    assert not found.in_past and not found.approximate


def test_fri_morning_for_a_checkup_is_a_window(business: Business) -> None:
    found = slots("can i come in fri morning for a checkup", business)
    assert found.service == "checkup"
    assert found.date == date(2026, 3, 6)
    assert found.time == time(9, 0)
    assert found.approximate
    assert found.time_window == (time(8, 0), time(12, 0))


def test_month_day_at_a_bare_hour_reads_business_hours(business: Business) -> None:
    found = slots("3/14 at 9", business)
    assert found.datetime == datetime(2026, 3, 14, 9, 0, tzinfo=NY)
    # After the DST change of 8 March: 09:00 EDT.
    assert found.datetime.utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("at 3", time(15, 0)),
        ("at 9", time(9, 0)),
        ("at 12", time(12, 0)),
        ("at 5", time(17, 0)),
        ("at noon", time(12, 0)),
        ("midnight", time(0, 0)),
        ("at 3:30", time(15, 30)),
        ("15:45", time(15, 45)),
        ("10am", time(10, 0)),
        ("2 p.m.", time(14, 0)),
        ("3p", time(15, 0)),
        ("12am", time(0, 0)),
        ("at 8 in the evening", time(20, 0)),
        ("around 11ish", time(11, 0)),
    ],
)
def test_times(business: Business, text: str, expected: time) -> None:
    assert slots(text, business).time == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("next tuesday 10:30", date(2026, 3, 3)),
        ("this sat", date(2026, 3, 7)),
        ("thurs", date(2026, 3, 5)),
        ("monday", date(2026, 3, 9)),
        ("today", date(2026, 3, 2)),
        ("tmrw", date(2026, 3, 3)),
        ("day after tomorrow", date(2026, 3, 4)),
        ("in 3 days", date(2026, 3, 5)),
        ("march 20th", date(2026, 3, 20)),
        ("the 1st", date(2026, 4, 1)),
        ("14th of april", date(2026, 4, 14)),
        # Issue 11: a month and day that just passed is that (past) date, not next year's.
        ("2/10", date(2026, 2, 10)),
        ("12/10", date(2026, 12, 10)),
        ("2/10/27", date(2027, 2, 10)),
        ("nxt wk tues", date(2026, 3, 10)),
        ("next week", date(2026, 3, 9)),
        ("in two weeks", date(2026, 3, 16)),
        ("in 2 wks", date(2026, 3, 16)),
        ("2moro", date(2026, 3, 3)),
    ],
)
def test_dates(business: Business, text: str, expected: date) -> None:
    assert slots(text, business).date == expected


def test_next_tuesday_keeps_its_time(business: Business) -> None:
    assert slots("next tuesday 10:30", business).datetime == datetime(2026, 3, 3, 10, 30, tzinfo=NY)


def test_yesterday_is_in_the_past(business: Business) -> None:
    found = slots("yesterday at 3", business)
    assert found.datetime == datetime(2026, 3, 1, 15, 0, tzinfo=NY)
    assert found.in_past


def test_earlier_today_is_in_the_past(business: Business) -> None:
    assert slots("today at 8am", business).in_past
    assert not slots("today at 10am", business).in_past


def test_numbers_that_are_not_times(business: Business) -> None:
    found = slots("i need 4 fillings", business)
    assert (found.service, found.time, found.date) == ("filling", None, None)
    assert slots("in 2 weeks", business).time is None


def test_bare_hour_right_after_a_date(business: Business) -> None:
    assert slots("tmrw 4", business).datetime == datetime(2026, 3, 3, 16, 0, tzinfo=NY)


def test_nonsense_dates_are_dropped(business: Business) -> None:
    assert slots("13/14", business).date is None


def test_nothing_found(business: Business) -> None:
    found = slots("what are your hours", business)
    assert found.empty
    assert found.as_entities() == {}


def test_now_in_utc_is_read_in_the_business_zone(business: Business) -> None:
    # 02:30 UTC on Sunday 8 March is still Saturday 21:30 in New York.
    now = datetime(2026, 3, 8, 2, 30, tzinfo=UTC)
    found = slots("tomorrow at 3pm", business, now)
    assert found.date == date(2026, 3, 8)
    # 8 March is the DST change: 15:00 is EDT (UTC-4), i.e. 19:00 UTC.
    assert found.datetime is not None
    assert found.datetime.astimezone(UTC) == datetime(2026, 3, 8, 19, 0, tzinfo=UTC)


def test_dst_day_before_and_after(business: Business) -> None:
    now = datetime(2026, 3, 7, 14, 0, tzinfo=UTC)  # Saturday 09:00 EST
    saturday = slots("today at 11", business, now).datetime
    sunday = slots("tomorrow at 11", business, now).datetime
    assert saturday is not None and sunday is not None
    assert saturday.utcoffset() == timedelta(hours=-5)
    assert sunday.utcoffset() == timedelta(hours=-4)
    # A calendar day apart, but only 23 real hours.
    assert sunday.astimezone(UTC) - saturday.astimezone(UTC) == timedelta(hours=23)


def test_entities_are_json_ready(business: Business) -> None:
    assert slots("whitening fri afternoon", business).as_entities() == {
        "service": "whitening",
        "date": "2026-03-06",
        "time": "14:00",
        "datetime": "2026-03-06T14:00:00-05:00",
        "in_past": False,
        "approximate": True,
        "time_window": ["12:00", "17:00"],
    }


def test_naive_now_is_refused(business: Business) -> None:
    with pytest.raises(ValueError, match="aware"):
        extract_slots("tomorrow", now=datetime(2026, 3, 2, 9), business=business)


def test_a_date_that_passed_is_never_moved_to_next_year(business: Business) -> None:
    found = slots("book a filling for march 1 at 2pm", business)
    assert found.date == date(2026, 3, 1)
    assert found.in_past
    # Written with its year, a date is taken as written.
    assert slots("march 1 2027", business).date == date(2027, 3, 1)


@pytest.mark.parametrize(
    ("text", "service"),
    [("cn i bk a clning", "cleaning"), ("chekup pls", "checkup"), ("whitenin", "whitening"), ("a fillin", "filling")],
)
def test_service_names_with_typos(business: Business, text: str, service: str) -> None:
    assert slots(text, business).service == service


@pytest.mark.parametrize("text", ["my tooth is killing me", "is it clear", "feeling better", "checking in"])
def test_everyday_words_are_not_services(business: Business, text: str) -> None:
    assert slots(text, business).service is None


def test_relative_to_the_moment_in_the_flow(business: Business) -> None:
    ref = datetime(2026, 3, 5, 9, 0, tzinfo=NY)
    later = extract_slots("same day but an hour later", now=MONDAY_9AM, business=business, ref=ref)
    assert (later.date, later.time) == (date(2026, 3, 5), time(10, 0))
    earlier = extract_slots("half an hour earlier", now=MONDAY_9AM, business=business, ref=ref)
    assert (earlier.date, earlier.time) == (date(2026, 3, 5), time(8, 30))
    # Without a moment to refer to, nothing is read.
    assert slots("an hour later", business).time is None


def test_a_bare_hour_only_where_a_time_is_asked(business: Business) -> None:
    assert slots("make it 10 instead", business).time is None
    asked = extract_slots("make it 10 instead", now=MONDAY_9AM, business=business, bare_hour=True)
    assert asked.time == time(10, 0)
    assert extract_slots("4 works", now=MONDAY_9AM, business=business, bare_hour=True).time == time(16, 0)
    assert extract_slots("in 2 weeks", now=MONDAY_9AM, business=business, bare_hour=True).time is None


def test_weekday_named() -> None:
    from bot.nlu.slots import weekday_named

    assert weekday_named("the friday one") == 4
    assert weekday_named("tues or wed") is None
    assert weekday_named("the cleaning one") is None

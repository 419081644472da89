"""Open now, and when next: the one owner of those words."""

from __future__ import annotations

from datetime import datetime

from bot.business import Business
from bot.opening import opening_status

from .conftest import NY


def test_open_on_a_weekday_morning(business: Business) -> None:
    status = opening_status(business, datetime(2026, 3, 2, 9, 0, tzinfo=NY))
    assert status.open_now and status.closes_text == "5pm" and status.today_text == "open today 8am-5pm"


def test_saturday_evening_opens_monday(business: Business) -> None:
    status = opening_status(business, datetime(2026, 3, 7, 18, 0, tzinfo=NY))
    assert not status.open_now
    assert status.next_open_text == "Monday 8am"
    assert status.next_open == datetime(2026, 3, 9, 8, 0, tzinfo=NY)


def test_before_opening_is_today(business: Business) -> None:
    status = opening_status(business, datetime(2026, 3, 7, 7, 30, tzinfo=NY))
    assert status.next_open_text == "today 9am" and status.today_text == "open today 9am-1pm"


def test_sunday_is_closed_today(business: Business) -> None:
    status = opening_status(business, datetime(2026, 3, 8, 12, 0, tzinfo=NY))
    assert status.today_text == "closed today" and status.next_open_text == "tomorrow 8am"

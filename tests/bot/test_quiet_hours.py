"""The quiet-hours policy: windows, stricter US states, the recipient's zone, moving reminders earlier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.quiet_hours import QuietHours, QuietHoursPolicy, load_state_rules

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")


def policy(**config: object) -> QuietHoursPolicy:
    return QuietHoursPolicy(QuietHours.model_validate(config), load_state_rules(), NY)


def test_a_night_message_waits_for_eight_in_the_morning_local() -> None:
    hold = policy().hold(user="+12125550123", channel="sms", now=datetime(2026, 3, 2, 22, 30, tzinfo=NY))
    assert hold is not None and hold.reason == "quiet_hours"
    assert hold.local_release() == datetime(2026, 3, 3, 8, 0, tzinfo=NY)
    assert hold.text() == "until 08:00 America/New_York (Tue Mar 3)"
    assert policy().hold(user="+12125550123", channel="sms", now=datetime(2026, 3, 2, 20, 59, tzinfo=NY)) is None


def test_stricter_states_and_their_days() -> None:
    # Florida: 8 pm, not 9 pm (the state law decides, not the business window).
    hold = policy().hold(user="+13055550123", channel="sms", now=datetime(2026, 3, 2, 20, 30, tzinfo=NY))
    assert hold is not None and (hold.reason, hold.state) == ("state_law", "FL")
    # Texas on a Sunday morning: noon.
    chicago = ZoneInfo("America/Chicago")
    hold = policy().hold(user="+12815550123", channel="sms", now=datetime(2026, 3, 8, 10, 0, tzinfo=chicago))
    assert hold is not None and hold.local_release() == datetime(2026, 3, 8, 12, 0, tzinfo=chicago)
    # Turned off: the business window alone.
    assert policy(us_states=False).hold(user="+13055550123", channel="sms",
                                        now=datetime(2026, 3, 2, 20, 30, tzinfo=NY)) is None


def test_per_channel_windows_and_the_one_string_form() -> None:
    p = policy(allowed="09:00-20:00", channels={"whatsapp": "10:00-18:00"})
    at = datetime(2026, 3, 2, 9, 30, tzinfo=NY)
    assert p.hold(user="+12125550123", channel="sms", now=at) is None
    held = p.hold(user="+12125550123", channel="whatsapp", now=at)
    assert held is not None and held.local_release() == datetime(2026, 3, 2, 10, 0, tzinfo=NY)
    with pytest.raises(ValueError, match="end must be after start"):
        QuietHours.model_validate({"start": "21:00", "end": "08:00"})


def test_the_recipient_zone_comes_from_the_conversation_then_the_number() -> None:
    p = policy()
    assert p.zone_for("+14155550123") == LA
    assert p.zone_for("+14155550123", known="Europe/Paris") == ZoneInfo("Europe/Paris")
    assert p.zone_for("+14155550123", local_patient=True) == NY
    assert p.zone_for("+442071234567") == ZoneInfo("Europe/London")
    assert p.zone_for("+447700900123") == NY  # a number with no known zone: the business's
    # A toll-free number spans every US zone: the latest-waking one (smallest UTC offset) is used.
    zone = p.zone_for("+18005550123")
    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    offset = now.astimezone(zone).utcoffset()
    assert offset is not None and offset <= timedelta(hours=-10)


def test_a_reminder_in_quiet_hours_moves_to_the_last_allowed_minute_before_it() -> None:
    p = policy()
    early = datetime(2026, 3, 3, 7, 30, tzinfo=NY)  # before 8 am: the evening before
    moved = p.latest_allowed_before(user="+12125550123", channel="sms", moment=early, zone=NY)
    assert moved.astimezone(NY) == datetime(2026, 3, 2, 20, 59, tzinfo=NY)
    late = datetime(2026, 3, 3, 22, 15, tzinfo=NY)  # after 9 pm: earlier the same evening
    moved = p.latest_allowed_before(user="+12125550123", channel="sms", moment=late, zone=NY)
    assert moved.astimezone(NY) == datetime(2026, 3, 3, 20, 59, tzinfo=NY)
    fine = datetime(2026, 3, 3, 10, 0, tzinfo=NY)
    assert p.latest_allowed_before(user="+12125550123", channel="sms", moment=fine, zone=NY) == fine

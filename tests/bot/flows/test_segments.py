"""Every SMS reply a flow sends fits one segment where the content allows, two at most (issue 11).

Each flow template is rendered the way the flows render it, with realistic
and long values (the longest service label, a two-digit date at 10:30, the
full list of options), finished for SMS and counted with bot/sms/segments.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bot.business import load_business
from bot.flows.base import NO, YES
from bot.messages import Channel, Choice, Reply
from bot.opening import opening_status
from bot.outgoing import finish_sms_reply
from bot.templates import ReplyTemplates

ROOT = Path(__file__).resolve().parents[3]
BUSINESS = load_business(ROOT / "intents" / "business.yaml")
TEMPLATES = ReplyTemplates(ROOT / "prompts")
# The longest of each: "whitening", Wednesday the 18th at 10:30 AM.
SERVICE = "whitening"
WHEN = "Wed, Mar 18 at 10:30 AM"
DAY = "Wed, Mar 18"
TIMES = [Choice(f"at:{i}", t) for i, t in enumerate(["10:30 AM", "11:30 AM", "12:30 PM"])]
DATED = [Choice(f"at:{i}", f"Wed, Mar 18 at {t}") for i, t in enumerate(["10:30 AM", "11:30 AM", "12:30 PM"])]
APPOINTMENTS = [
    Choice(f"appt:{i}", f"{s} {w}")
    for i, (s, w) in enumerate([("whitening", WHEN), ("cleaning", "Thu, Mar 19 at 10:30 AM"), ("filling", WHEN)])
]
SERVICES = [Choice(f"service:{s.key}", s.label) for s in BUSINESS.services.values()]

# (template, values, choices): every reply the flow tables send.
CASES: list[tuple[str, dict[str, Any], list[Choice]]] = [
    ("ask_service", {"services": list(BUSINESS.services.values())}, SERVICES),
    ("ask_date", {"service": SERVICE}, []),
    ("ask_time", {"service": SERVICE, "day": DAY}, TIMES),
    ("ask_change", {"service": SERVICE}, []),
    ("confirm_booking", {"service": SERVICE, "when": WHEN}, [YES, NO]),
    ("confirm_reschedule", {"service": SERVICE, "when": WHEN}, [YES, NO]),
    ("confirm_cancel", {"service": SERVICE, "when": WHEN}, [YES, NO]),
    ("date_past", {"service": SERVICE, "day": DAY}, []),
    ("slot_past", {"service": SERVICE}, []),
    ("slot_unavailable", {"service": SERVICE, "when": WHEN, "day": DAY, "reason": "closed"}, DATED),
    ("slot_unavailable", {"service": SERVICE, "when": WHEN, "day": DAY, "reason": "closed_day"}, DATED),
    ("slot_unavailable", {"service": SERVICE, "when": WHEN, "reason": "taken"}, DATED),
    ("day_full", {"service": SERVICE, "day": DAY, "closed": True}, DATED),
    ("day_full", {"service": SERVICE, "day": DAY, "closed": False}, DATED),
    ("pick_appointment", {"action": "reschedule", "appointments": []}, APPOINTMENTS),
    ("pick_which", {}, APPOINTMENTS[:2]),
    ("rescheduled", {"service": SERVICE, "when": WHEN}, []),
    ("cancelled", {"service": SERVICE, "when": WHEN}, []),
    ("cancel_kept", {}, []),
    ("flow_cancelled", {}, []),
    ("no_appointments", {}, []),
    # Outside opening hours (a Saturday afternoon) it also says when someone will answer.
    ("handoff", {"minutes": 30, "opening": opening_status(BUSINESS, datetime(2026, 3, 7, 14, tzinfo=BUSINESS.tz))}, []),
    ("handoff", {"minutes": 30, "opening": opening_status(BUSINESS, datetime(2026, 3, 3, 10, tzinfo=BUSINESS.tz))}, []),
    # Still unclear after one clarification: a person takes over, saying when.
    ("handoff_stuck", {"opening": opening_status(BUSINESS, datetime(2026, 3, 7, 14, tzinfo=BUSINESS.tz))}, []),
    ("handoff_stuck", {"opening": opening_status(BUSINESS, datetime(2026, 3, 3, 10, tzinfo=BUSINESS.tz))}, []),
    ("handoff_returned", {}, []),
]
# Only these need more than one segment: the confirmation of a booking carries the address and how to change it.
TWO_SEGMENTS = {"booked"}


def segments(template: str, values: dict[str, Any], choices: list[Choice]) -> int:
    text = TEMPLATES.render(template, Channel.SMS.value, business=BUSINESS, **values)
    out = finish_sms_reply(Reply(text=text, choices=tuple(choices)))
    assert out.segments is not None
    return out.segments.segments


@pytest.mark.parametrize(("template", "values", "choices"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_flow_replies_fit_one_sms_segment(template: str, values: dict[str, Any], choices: list[Choice]) -> None:
    assert segments(template, values, choices) == 1


def test_the_booking_confirmation_fits_two_segments() -> None:
    assert segments("booked", {"service": SERVICE, "when": WHEN}, []) <= 2


def test_every_flow_template_is_counted() -> None:
    """A new template in a flow table must be added here, so its length is checked."""
    from bot.flows.appointments import BOOK, CANCEL, RESCHEDULE

    counted = {c[0] for c in CASES} | TWO_SEGMENTS
    for table in (BOOK, RESCHEDULE, CANCEL):
        for slot in table.slots:
            assert slot.prompt in counted
        assert table.confirm is not None and table.confirm.question in counted

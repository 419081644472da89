"""The FAQ of intents/business.yaml: retrieval, answers from the business data, out-of-scope kept out."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
import yaml

from bot.business import Business
from bot.faq import FaqBook

from .conftest import MONDAY_9AM, NY, ROOT

ASKED = [
    ("how long does a checkup take?", "duration"),
    ("hw long is a whitening appt", "duration"),
    ("can you send me a reminder the day before?", "reminders"),
    ("will u remind me", "reminders"),
    ("r u open rn", "open_now"),
    ("are you open today", "open_now"),
    ("what should i bring", "what_to_bring"),
    ("are you taking new patients?", "new_patients"),
    ("im a new patient", "new_patients"),
    ("do u take insurance", "insurance"),
    ("do you accept delta dental insurance", "insurance"),
    ("how do i pay", "payment"),
    ("can i pay by card", "payment"),
    ("is there a fee if i cancel", "cancellation_policy"),
    ("where do i park", "parking"),
]
NOT_FAQ = [
    "book a cleaning tomorrow at 3pm",
    "can i book a checkup",
    "how much is a cleaning",
    "i need to cancel",
    "reschedule my appointment",
    "what time do you close today",
    "how long does a root canal take to heal",
    "do you do braces",
    "hi",
    "yes",
]


@pytest.mark.parametrize(("text", "key"), ASKED)
def test_questions_find_their_faq(faq: FaqBook, text: str, key: str) -> None:
    found = faq.match(text)
    assert found is not None and found.key == key


@pytest.mark.parametrize("text", NOT_FAQ)
def test_requests_and_other_questions_are_not_faq(faq: FaqBook, text: str) -> None:
    assert faq.match(text) is None


def test_held_out_out_of_scope_lines_stay_out(faq: FaqBook) -> None:
    # Out of scope must still reach the fallback: at most the insurance one (an FAQ now) may match.
    items = yaml.safe_load((ROOT / "bench" / "data" / "heldout.yaml").read_text())
    oos = [item["text"] for item in items if item["intent"] == "fallback"]
    matched = {text: hit.key for text in oos if (hit := faq.match(text)) is not None}
    assert set(matched.values()) <= {"insurance"}, matched
    assert len(matched) <= 1


def test_duration_answer_names_the_service(faq: FaqBook, business: Business) -> None:
    hit = faq.match("how long does a checkup take?")
    assert hit is not None
    text = faq.answer(hit, service=business.service("checkup"), now=MONDAY_9AM, reminder_lead_hours=24)
    assert text == "A checkup takes about 30 minutes. Want to book?"
    inside = faq.answer(hit, service=None, now=MONDAY_9AM, reminder_lead_hours=24, in_flow=True)
    assert inside == "Times: Cleaning 60 min, Checkup 30 min, Whitening 90 min, Filling 60 min."


def test_open_now_follows_the_clock(faq: FaqBook) -> None:
    open_text = faq.answer("open_now", service=None, now=MONDAY_9AM, reminder_lead_hours=24)
    assert open_text.startswith("Yes, we're open now until 5pm.")
    sunday = datetime(2026, 3, 8, 11, 0, tzinfo=NY)
    assert faq.answer("open_now", service=None, now=sunday, reminder_lead_hours=24).startswith(
        "We're closed right now; we open tomorrow 8am."
    )
    evening = MONDAY_9AM + timedelta(hours=10)
    assert "we open tomorrow 8am" in faq.answer("open_now", service=None, now=evening, reminder_lead_hours=24)


def test_reminder_answer_uses_the_reminder_setting(faq: FaqBook) -> None:
    text = faq.answer("reminders", service=None, now=MONDAY_9AM, reminder_lead_hours=48)
    assert "48 hours before" in text


def test_every_answer_renders_and_fits_two_segments(faq: FaqBook, business: Business) -> None:
    from bot.sms.segments import count_segments

    for key in faq.keys:
        for service in (None, *business.services.values()):
            text = faq.answer(key, service=service, now=MONDAY_9AM, reminder_lead_hours=24)
            assert text and count_segments(text).segments <= 2, (key, text)


def test_a_broken_answer_template_fails_at_start_up(business: Business, tmp_path: Path) -> None:
    from bot.errors import TemplateError
    from bot.nlu.intents import load_intents
    from bot.templates import ReplyTemplates

    broken = business.model_copy(
        update={"faq": {"x": business.faq["parking"].model_copy(update={"answer": "{% if %}"})}}
    )
    with pytest.raises(TemplateError, match=r"faq\.x\.answer"):
        FaqBook.build(broken, load_intents(ROOT / "intents" / "intents.yaml"), ReplyTemplates(ROOT / "prompts"))


def test_a_sure_request_needs_a_clearer_faq(faq: FaqBook) -> None:
    from bot.faq import REQUEST_MARGIN

    # Equally close to "are you open on saturday" and to booking examples: a booking.
    assert faq.match("book a whitening on saturday at 12", margin=REQUEST_MARGIN) is None
    found = faq.match("is there a fee if i cancel", margin=REQUEST_MARGIN)
    assert found is not None and found.key == "cancellation_policy"

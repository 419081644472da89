"""Reading a message as an answer to a reminder, the way people really text (intents/reminder_replies.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.confirmations.replies import ReminderReplies, load_reminder_replies
from bot.errors import ConfigError


@pytest.fixture(scope="module")
def replies() -> ReminderReplies:
    return load_reminder_replies(Path("intents/reminder_replies.yaml"))


@pytest.mark.parametrize("text", [
    "C", "c", "c.", " C ", "yes", "Yes!!", "yep", "ok", "confirm", "Confirmed", "yes please", "👍", "👍🏽", "✅",
    "I'll be there", "I’ll be there!", "ill b there", "will be there thx", "see you then", "yes i'll be there, thanks!",
    "sorry just saw this. I’ll be there 👍", "ok sounds good", "Perfect!",
])
def test_confirmations(replies: ReminderReplies, text: str) -> None:
    assert replies.read(text) == "confirm"


@pytest.mark.parametrize("text", [
    "R", "r", "reschedule", "can we move it?", "can we move it to friday", "Could I change my appointment",
    "hi. can we move it to friday?", "need to reschedule my appt",
])
def test_reschedules(replies: ReminderReplies, text: str) -> None:
    assert replies.read(text) == "reschedule"


@pytest.mark.parametrize("text", [
    "can't make it", "cant make it sorry", "Can’t make it sorry", "cancel it", "please cancel my appointment",
    "i need to cancel, sick", "ugh sorry, I can't make it anymore", "im not gonna make it",
])
def test_cancellations(replies: ReminderReplies, text: str) -> None:
    assert replies.read(text) == "cancel"


@pytest.mark.parametrize("text", [
    "", "stop", "STOP", "hi", "what time is it", "ok, what are your hours?", "yes please. also what time do you open",
    "cancel", "can i book a cleaning", "thanks", "see you", "bye", "c you later", "where do i park",
])
def test_other_messages_are_no_answer(replies: ReminderReplies, text: str) -> None:
    # A bare "cancel" stays compliance's (an opt-out keyword on SMS), "bye" a goodbye.
    assert replies.read(text) is None


def test_codes_are_the_bare_letters(replies: ReminderReplies) -> None:
    assert replies.is_code("C") and replies.is_code("r.") and not replies.is_code("yes")


def test_a_bad_pattern_is_a_start_up_error(tmp_path: Path) -> None:
    bad = tmp_path / "reminder_replies.yaml"
    bad.write_text("version: 1\nconfirm: ['^(c$']\nreschedule: ['^r$']\ncancel: ['x']\n")
    with pytest.raises(ConfigError, match="confirm"):
        load_reminder_replies(bad)
    bad.write_text("version: 1\nconfirm: ['^c$']\nreschedule: ['^r$']\ncancle: ['x']\n")
    with pytest.raises(ConfigError, match="cancle"):
        load_reminder_replies(bad)

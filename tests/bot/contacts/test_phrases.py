"""Which messages start a reminder-contact verification (intents/reminder_contacts.yaml): precision first."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.contacts.flow import ContactPhrases, find_code, find_number

PHRASES = ContactPhrases.load(Path("intents") / "reminder_contacts.yaml")


@pytest.mark.parametrize("text", [
    "send my reminders to my husband's phone",
    "can u send my reminders to my husbands phone?",
    "pls text my wife's phone instead",
    "use this number from now on: +1 415 555 0199",
    "send my reminders to 415-555-0199 too pls",
    "can the reminders go to my daughter's cell",
    "add my husbands number for reminders",
    "remind me on my new number 415 555 0199",
    "pls send reminders to my wife's number +1 415 555 0199",
])
def test_requests(text: str) -> None:
    assert PHRASES.asks(text)


@pytest.mark.parametrize("text", [
    "I didn't get a text on my phone",
    "can you send me a reminder the day before?",
    "my phone number is 415 555 0123, book a cleaning",
    "what's your phone number",
    "I got your message, thanks",
    "do u send reminders?",
    "call me at 415-555-0111",
    "stop texting my phone",
])
def test_look_alikes(text: str) -> None:
    assert not PHRASES.asks(text)


@pytest.mark.parametrize(("text", "mode"), [
    ("use this number from now on: +1 415 555 0199", "instead"),
    ("send my reminders to 415-555-0199 too pls", "also"),
    ("pls text my wife's phone instead", "instead"),
])
def test_instead_or_also(text: str, mode: str) -> None:
    assert PHRASES.mode(text) == mode


@pytest.mark.parametrize(("text", "code"), [
    ("123456", "123456"), ("the code is 123 456", "123456"), ("code: 0042", "0042"),
    ("it's 3/14 at 10:30", None), ("ok", None), ("call 415-555-0199", None),
])
def test_codes(text: str, code: str | None) -> None:
    assert find_code(text) == code


def test_numbers() -> None:
    assert find_number("it's (415) 555-0199") == "+14155550199"
    assert find_number("+44 20 7946 0958 is my uk one") == "+442079460958"
    assert find_number("at 3pm on the 14th") is None

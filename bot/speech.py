"""Text written for a speech engine: what a caller hears from ``<Say>``.

Replies are written for reading; a caller hears them once, at speaking
speed. :func:`spoken` rewrites a reply for the ear: no URLs, emoji or
formatting marks, abbreviated days and months in full ("Tue, Mar 3" →
"Tuesday, March 3"), ranges read as "to", one idea per sentence (each line
ends a sentence), and the choices as "Say yes or press 1." so the keypad
works as well as the voice. Times ("10:30 AM") and prices ("$120") are read
well by Polly and Google voices as they are; "9:00 AM" becomes "9 AM".

Example::

    >>> from bot.messages import Choice
    >>> spoken("Book a cleaning on Tue, Mar 3 at 9:00 AM? 😊", [Choice("yes", "Yes"), Choice("no", "No")])
    'Book a cleaning on Tuesday, March 3 at 9 AM? Say yes or press 1. Say no or press 2.'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from bot.messages import Choice

_URL: Final = re.compile(r"\(?\b(?:https?://|www\.)\S+\)?", re.IGNORECASE)
_MARKS: Final = re.compile(r"(?<!\w)[*_~`]+|[*_~`]+(?!\w)")
_DAYS: Final = {
    "Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday",
    "Thur": "Thursday", "Thurs": "Thursday", "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday",
}
_MONTHS: Final = {
    "Jan": "January", "Feb": "February", "Mar": "March", "Apr": "April", "Jun": "June", "Jul": "July",
    "Aug": "August", "Sep": "September", "Sept": "September", "Oct": "October", "Nov": "November",
    "Dec": "December",
}
# "Tue," / "Tue " before a month, a date or the end of a range; "Mar 3".
_DAY: Final = re.compile(r"\b(" + "|".join(sorted(_DAYS, key=len, reverse=True)) + r")\b\.?")
_MONTH: Final = re.compile(r"\b(" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?(?= \d)")
_RANGE: Final = re.compile(r"(?<=[\w$.])\s*[-–—]\s*(?=[\w$])")
_ON_THE_HOUR: Final = re.compile(r"\b(\d{1,2}):00(?=\s?[AaPp]\.?[Mm]\b)")
_MERIDIEM: Final = re.compile(r"\b(\d{1,2}(?::\d{2})?)\s?([ap])(\.m\.|m)(?!\w)", re.IGNORECASE)
_SENTENCE_NEXT: Final = re.compile(r"\s*$|\s+[A-Z]")
_NUMBERED_LINE: Final = re.compile(r"^\s*(\d+)[.)]\s+", re.MULTILINE)
_SPACES: Final = re.compile(r"[ \t]+")
_SPACE_BEFORE_STOP: Final = re.compile(r"\s+([.,;:?!])")
_PARENS: Final = re.compile(r"\(\s*\)")


def spoken(text: str, choices: Sequence[Choice] = ()) -> str:
    """``text`` rewritten for speech, then the choices as "Say X or press N." sentences.

    >>> spoken("Hours: Mon-Fri 8am-5pm.\\nSee https://example.com/hours")
    'Hours: Monday to Friday 8 AM to 5 PM. See.'
    """
    sentences = [_sentence(line) for line in text.splitlines()]
    sentences.extend(speak_choice(number, choice) for number, choice in enumerate(choices, 1))
    return " ".join(s for s in sentences if s)


def speak_choice(number: int, choice: Choice) -> str:
    """One choice as a sentence the caller can act on by voice or keypad.

    >>> from bot.messages import Choice
    >>> speak_choice(1, Choice("service:cleaning", "Cleaning"))
    'Say cleaning or press 1.'
    >>> speak_choice(2, Choice("slot:1", "Tue Mar 3 10:30 AM"))
    'For Tuesday March 3 10:30 AM, press 2.'
    """
    title = _words(choice.title).rstrip(".!?")
    if len(title.split()) <= 2 and not any(ch.isdigit() for ch in title):
        # A word or two ("cleaning", "yes") is easy to say back.
        return f"Say {title.lower()} or press {number}."
    return f"For {title}, press {number}."


def _sentence(line: str) -> str:
    words = _words(_NUMBERED_LINE.sub(lambda m: f"Number {m.group(1)}: ", line))
    if words and words[-1] not in ".!?:;,":
        words += "."
    return words


def _words(text: str) -> str:
    text = _URL.sub("", text)
    text = "".join(ch for ch in text if not _is_pictograph(ch))
    text = _MARKS.sub("", text)
    text = _ON_THE_HOUR.sub(r"\1", text)
    text = _MERIDIEM.sub(_meridiem, text)
    text = _RANGE.sub(" to ", text)
    text = _MONTH.sub(lambda m: _MONTHS[m.group(1)], text)
    text = _DAY.sub(lambda m: _DAYS[m.group(1)], text)
    text = _PARENS.sub("", text)
    text = _SPACE_BEFORE_STOP.sub(r"\1", _SPACES.sub(" ", text))
    return text.strip()


def _meridiem(m: re.Match[str]) -> str:
    # "5 p.m. Hours" ends a sentence with the abbreviation's dot: keep one.
    dotted_end = m.group(3) != "m" and _SENTENCE_NEXT.match(m.string, m.end()) is not None
    return f"{m.group(1)} {m.group(2).upper()}M" + ("." if dotted_end else "")


def _is_pictograph(ch: str) -> bool:
    # Emoji and their joiners/selectors: a speech engine reads their names aloud.
    if ch in "\u200d\ufe0f\ufe0e\u20e3":
        return True
    category = unicodedata.category(ch)
    return (category in ("So", "Sk") and ord(ch) > 0x2000) or 0x1F000 <= ord(ch) <= 0x1FAFF

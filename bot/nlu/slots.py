"""Slot extraction: service, date and time from free text.

Everything is read in the business time zone, relative to an injected
``now`` (a frozen clock in tests), so "tomorrow at 3" means the same thing
in a transcript today and next year.

How times are read (our rules, not dateparser's, because they need business
context):

- ``3pm``, ``3:30 p.m.``, ``15:00``, ``noon``, ``midnight`` are exact.
- A bare hour ("at 9", "tomorrow 3", "3/14 at 9", "10:30") is read the way
  that falls inside the business's opening hours: 9 -> 09:00, 3 -> 15:00.
  When neither reading does, 1-6 are afternoon and 7-11 morning. A part of
  the day disambiguates: "at 8 in the evening" -> 20:00.
- A part of the day alone is a window with a default time the flow may
  offer: morning 08:00-12:00 (09:00), afternoon 12:00-17:00 (14:00),
  evening/tonight 17:00-21:00 (18:00), lunchtime 11:30-13:30 (12:00).
  ``time`` is then the default and ``approximate`` is True.

Dates: the first date phrase (today, tomorrow, weekdays with this/next,
``3/14``, ``March 14``, ``the 14th``, "in 3 days") is parsed by
``dateparser`` with ``RELATIVE_BASE`` = now in the business zone and
``PREFER_DATES_FROM = future``, so "fri" is the coming Friday and "3/14" in
April means next year; but a month and day that passed within the last two
months ("march 1" on March 2) stays in the past (``in_past``), so the flow
says it has passed rather than booking next year. On a Monday, "next tuesday" is the next day (as
dateparser reads it); the flow confirms the full date anyway. A cheap regex
finds date phrases first: dateparser (about 0.5 ms a call) only runs when
there is one, and only on that phrase.

Example::

    now = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("America/New_York"))
    slots = extract_slots("book a cleaning tomorrow at 3pm", now=now, business=business)
    slots.service, slots.datetime   # ("cleaning", 2026-03-03 15:00-05:00)
    extract_slots("yesterday at 3", now=now, business=business).in_past  # True
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from typing import Any

import dateparser
from rapidfuzz import fuzz, process

from bot.business import WEEKDAYS, Business, Service
from bot.nlu.text import expand_sms, normalize

# -- parts of the day: (start, end, default) --------------------------------
_PARTS: dict[str, tuple[dt.time, dt.time, dt.time]] = {
    "morning": (dt.time(8), dt.time(12), dt.time(9)),
    "afternoon": (dt.time(12), dt.time(17), dt.time(14)),
    "evening": (dt.time(17), dt.time(21), dt.time(18)),
    "lunchtime": (dt.time(11, 30), dt.time(13, 30), dt.time(12)),
}
_PART_WORDS = {
    "morning": "morning", "mornin": "morning",
    "afternoon": "afternoon", "arvo": "afternoon",
    "evening": "evening", "tonight": "evening", "night": "evening",
    "lunch": "lunchtime", "lunchtime": "lunchtime", "lunch time": "lunchtime",
}
_PART = re.compile(
    r"\b(?:in the |this |tomorrow |during the )?"
    r"(morning|mornin|afternoon|arvo|evening|tonight|night|lunch ?time|lunch)\b"
)

# -- times -------------------------------------------------------------------
# An hour may not touch a date ("3/14"), a decimal or another digit.
_H = r"(?<![\d/:.,$])(?P<h>[01]?\d|2[0-3])"
_EXPLICIT = re.compile(_H + r"(?::(?P<m>[0-5]\d))?\s*(?P<mer>[ap])\.?m\b\.?|" + _H.replace("h>", "h2>")
                       + r"(?::(?P<m2>[0-5]\d))?(?P<mer2>[ap])\b")
_CLOCK = re.compile(_H + r":(?P<m>[0-5]\d)(?![\d/])")
_NAMED = re.compile(r"\b(noon|midday|midnight)\b")
# "at 9", "around 2ish"; not "in 2 weeks", "at 3 people", "by the 14th".
_NOT_AN_HOUR_AFTER = r"(?![\d/:.]|\s*(?:st|nd|rd|th|days?|weeks?|months?|hours?|hrs?|mins?|minutes?|people|kids|of)\b)"
_PREPOSITION = re.compile(
    r"\b(?:at|@|around|about|by|after|before|till|until|from|say)\s*" + _H + r"(?:\s*(?:o'?clock|ish))?"
    + _NOT_AN_HOUR_AFTER
)
_OCLOCK = re.compile(_H + r"\s*(?:o'?clock|ish)\b")

# -- dates -------------------------------------------------------------------
_WEEKDAYS = {
    "mon": "monday", "monday": "monday", "tue": "tuesday", "tues": "tuesday",
    "tuesday": "tuesday", "wed": "wednesday", "weds": "wednesday", "wednesday": "wednesday",
    "thu": "thursday", "thur": "thursday", "thurs": "thursday", "thursday": "thursday",
    "fri": "friday", "friday": "friday", "sat": "saturday", "saturday": "saturday",
    "sun": "sunday", "sunday": "sunday",
}
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ORD = r"(?:st|nd|rd|th)?"
_DATE = re.compile(
    "|".join(
        [
            r"\b(?P<rel>(?:the )?day after tomorrow|today|tonight|tomorrow|yesterday)\b",
            r"\b(?:(?P<mod>this|next|coming|on)\s+)?(?P<wd>"
            + "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
            + r")s?\b\.?",
            r"(?<![\d/])(?P<num>\d{1,2}/\d{1,2}(?:/(?:\d{4}|\d{2}))?)(?![\d/])",
            r"\b(?P<md>" + _MONTH + r"\s+\d{1,2}" + _ORD + r"(?:,?\s+\d{4})?)\b",
            r"\b(?P<dm>\d{1,2}" + _ORD + r"\s+(?:of\s+)?" + _MONTH + r")(?![a-z])",
            r"\b(?:the\s+)(?P<ord>\d{1,2})(?:st|nd|rd|th)\b|\b(?P<ord2>\d{1,2})(?:st|nd|rd|th)\b",
            r"\b(?P<inn>in\s+(?:\d{1,2}|a|one|two|three|four|five|six|seven)\s+(?:days?|weeks?))\b",
        ]
    )
)
# Dates further out than this are misreadings ("13/14" -> year 2114).
_HORIZON = dt.timedelta(days=400)
# A month and day without a year that lies this far ahead once moved to next
# year, but only this far behind this year, is a date that has passed ("march 1"
# on March 2): it is reported as past, never silently moved to next year.
_ROLLED = dt.timedelta(days=300)
_RECENT = dt.timedelta(days=62)

# Relative to the moment a conversation is about ("same day", "an hour later").
_SAME_DAY = re.compile(r"\b(?:same|that) day\b")
_SAME_TIME = re.compile(r"\b(?:same|that|the usual) time\b")
_COUNT = {"a": 1, "an": 1, "one": 1, "1": 1, "two": 2, "2": 2, "three": 3, "3": 3, "half an": 0.5, "half a": 0.5}
_SHIFT = re.compile(
    r"\b(?P<n>half an|half a|an|a|one|two|three|[123])\s*(?P<unit>hours?|hrs?|h)\s+"
    r"(?P<dir>later|earlier|after|before)\b"
    r"|\b(?P<half>half an hour|30 ?min(?:ute)?s?)\s+(?P<dir2>later|earlier)\b"
)
# "next week" alone: the first day of next week; "next week tuesday" / "tuesday next week": that day.
_NEXT_WEEK = re.compile(r"\bnext week\b")
# A bare hour the flow asked for ("make it 10 instead", "10 pls"): only where a time is expected.
_BARE = re.compile(
    r"(?<![\d/:.,$#])(?P<h>[01]?\d|2[0-3])(?![\d/:.]|\s*(?:st|nd|rd|th|days?|weeks?|months?|people|of)\b)"
)

# Typo-tolerant service names: "clning", "chekup", "whitenin". Only words of
# this length or more, starting with the same letter as the name (people
# rarely mistype the first letter; "killing" is not "filling"), at this
# rapidfuzz ratio or more.
_FUZZY_MIN_LEN = 5
_FUZZY_CUTOFF = 85.0
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class Slots:
    """What :func:`extract_slots` found; every field is optional.

    ``datetime`` is set when both ``date`` and ``time`` are, as an aware
    datetime in the business time zone. ``in_past`` is True when the date (or
    the date and time) lies before ``now``. ``time_window`` and
    ``approximate`` are set for a part of the day ("fri morning").
    """

    service: str | None = None
    date: dt.date | None = None
    time: dt.time | None = None
    datetime: dt.datetime | None = None
    in_past: bool = False
    approximate: bool = False
    time_window: tuple[dt.time, dt.time] | None = None

    @property
    def empty(self) -> bool:
        return self.service is None and self.date is None and self.time is None

    def as_entities(self) -> dict[str, Any]:
        """JSON-ready entities for logs, ``bot classify`` and transcripts.

        >>> Slots(service="cleaning").as_entities()
        {'service': 'cleaning'}
        """
        out: dict[str, Any] = {}
        if self.service is not None:
            out["service"] = self.service
        if self.date is not None:
            out["date"] = self.date.isoformat()
        if self.time is not None:
            out["time"] = self.time.strftime("%H:%M")
        if self.datetime is not None:
            out["datetime"] = self.datetime.isoformat()
        if self.date is not None or self.datetime is not None:
            out["in_past"] = self.in_past
        if self.approximate:
            out["approximate"] = True
        if self.time_window is not None:
            out["time_window"] = [t.strftime("%H:%M") for t in self.time_window]
        return out


def _business_span(business: Business) -> tuple[int, int]:
    """Earliest opening and latest closing hour over the week (for bare hours)."""
    periods = [period for day in WEEKDAYS for period in business.hours.on(day)]
    if not periods:
        return 8, 18
    return min(p.start.hour for p in periods), max(p.end.hour for p in periods)


def weekday_named(text: str) -> int | None:
    """The weekday (Monday = 0) a message names ("the friday one", "sat"), if exactly one.

    >>> weekday_named("the friday one"), weekday_named("tues or wed")
    (4, None)
    """
    found = {WEEKDAYS.index(_WEEKDAYS[w][:3]) for w in _WEEKDAY_WORD.findall(text.lower())}  # type: ignore[arg-type]
    return found.pop() if len(found) == 1 else None


_WEEKDAY_WORD = re.compile(r"\b(" + "|".join(sorted(_WEEKDAYS, key=len, reverse=True)) + r")s?\b")

# Per business: the one-word names to match typos against (built once).
_NAMES: dict[int, tuple[Business, dict[str, Service]]] = {}


def _fuzzy_names(business: Business) -> dict[str, Service]:
    cached = _NAMES.get(id(business))
    if cached is not None and cached[0] is business:
        return cached[1]
    names = {
        name: svc
        for svc in business.services.values()
        for name in svc.names
        if " " not in name and len(name) >= _FUZZY_MIN_LEN - 1
    }
    _NAMES[id(business)] = (business, names)
    return names


@functools.lru_cache(maxsize=4096)
def _fuzzy_word(word: str, names: tuple[str, ...]) -> str | None:
    candidates = [n for n in names if n[0] == word[0]]
    best = process.extractOne(word, candidates, scorer=fuzz.ratio, score_cutoff=_FUZZY_CUTOFF)
    return None if best is None else str(best[0])


def find_service(text: str, business: Business) -> Service | None:
    """The service named in ``text``, exactly or with a typo ("clning" -> cleaning).

    Example::

        find_service("cn i bk a clning", business).key   # "cleaning"
    """
    exact = business.find_service(text)
    if exact is not None:
        return exact
    names = _fuzzy_names(business)
    keys = tuple(names)
    for word in _WORD.findall(text):
        if len(word) >= _FUZZY_MIN_LEN and word not in _PLAIN_WORDS:
            hit = _fuzzy_word(word, keys)
            if hit is not None:
                return names[hit]
    return None


# Everyday words one edit from a service name that must not be read as one.
_PLAIN_WORDS = frozenset(
    {"clear", "cleared", "clearing", "feeling", "filing", "checking", "checked", "white", "whiter"}
)


def _bare_hour(hour: int, minute: int, part: str | None, span: tuple[int, int]) -> dt.time:
    """Read an hour written without am/pm the way the business context suggests."""
    if hour == 0 or hour > 12:
        return dt.time(hour % 24, minute)
    if part == "morning":
        return dt.time(hour % 12, minute)
    if part in ("afternoon", "evening"):
        return dt.time(hour % 12 + 12, minute)
    if hour == 12:
        return dt.time(12, minute)
    opens, closes = span
    am_ok = opens <= hour <= closes
    pm_ok = opens <= hour + 12 <= closes
    if am_ok != pm_ok:
        return dt.time(hour if am_ok else hour + 12, minute)
    return dt.time(hour + 12 if hour <= 6 else hour, minute)


def _find_time(
    text: str, part: str | None, span: tuple[int, int], date_end: int | None
) -> dt.time | None:
    match = _EXPLICIT.search(text)
    if match is not None:
        hour = int(match.group("h") or match.group("h2"))
        minute = int(match.group("m") or match.group("m2") or 0)
        pm = (match.group("mer") or match.group("mer2")) == "p"
        if 1 <= hour <= 12:
            return dt.time(hour % 12 + (12 if pm else 0), minute)
        return dt.time(hour, minute)  # "15pm": take the 24-hour reading
    match = _CLOCK.search(text)
    if match is not None:
        return _bare_hour(int(match.group("h")), int(match.group("m")), part, span)
    match = _NAMED.search(text)
    if match is not None:
        return dt.time(0) if match.group(1) == "midnight" else dt.time(12)
    match = _PREPOSITION.search(text) or _OCLOCK.search(text)
    if match is not None:
        return _bare_hour(int(match.group("h")), 0, part, span)
    if date_end is not None:
        # A bare number right after a date phrase: "tomorrow 3", "fri 10".
        after = re.match(r"\s*,?\s*(?P<h>[01]?\d|2[0-3])(?![\d/:.]|\s*(?:st|nd|rd|th)\b)", text[date_end:])
        if after is not None:
            return _bare_hour(int(after.group("h")), 0, part, span)
    return None


def _date_phrase(match: re.Match[str], today: dt.date) -> str | dt.date | None:
    """The phrase to hand to dateparser, or a date we can compute directly."""
    if match.group("rel"):
        return "today" if match.group("rel") == "tonight" else match.group("rel")
    if match.group("wd"):
        day = _WEEKDAYS[match.group("wd")]
        # dateparser knows "next friday" and "friday" (future), not "coming"/"this"/"on".
        return f"next {day}" if match.group("mod") == "next" else day
    if match.group("num"):
        return match.group("num")
    if match.group("md") or match.group("dm"):
        return str(match.group("md") or match.group("dm"))
    ordinal = match.group("ord") or match.group("ord2")
    if ordinal:
        # "the 14th": this month if still ahead (or today), else next month.
        # Computed here because dateparser reads a lone "1st" as January 1.
        day_of_month = int(ordinal)
        year, month = today.year, today.month
        if day_of_month < today.day:
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        try:
            return dt.date(year, month, day_of_month)
        except ValueError:
            return None
    return match.group("inn")


def _honest(date: dt.date, today: dt.date, phrase: str) -> dt.date:
    """``date`` unless it is a recent date moved to next year ("march 1" on March 2): then the past one."""
    if re.search(r"\d{4}|\d/\d+/\d", phrase):
        return date  # the year was written: take it as written
    if date - today > _ROLLED:
        try:
            this_year = date.replace(year=today.year)
        except ValueError:  # February 29
            return date
        if dt.timedelta(0) < today - this_year <= _RECENT:
            return this_year
    return date


def _parse_date(phrase: str, now_local: dt.datetime, date_order: str) -> dt.date | None:
    return _parse_date_on(phrase.lower(), now_local.date(), date_order)


# dateparser costs ~0.5-1.5 ms a call, and people write the same few phrases
# ("tomorrow", "friday", "next tuesday"): the answer depends only on the
# phrase and today's date, so cache it (bounded).
@functools.lru_cache(maxsize=2048)
def _parse_date_on(phrase: str, today: dt.date, date_order: str) -> dt.date | None:
    parsed = dateparser.parse(
        phrase,
        languages=["en"],
        settings={
            # Naive base in business-local wall time: relative words count
            # days on the business's calendar, not UTC's. Noon, so the
            # answer depends on the date alone (what the cache keys on).
            "RELATIVE_BASE": dt.datetime.combine(today, dt.time(12)),
            "PREFER_DATES_FROM": "future",
            "DATE_ORDER": date_order,
            "RETURN_AS_TIMEZONE_AWARE": False,
            "STRICT_PARSING": False,
        },
    )
    return None if parsed is None else parsed.date()


def extract_slots(
    text: str,
    *,
    now: dt.datetime,
    business: Business,
    ref: dt.datetime | None = None,
    bare_hour: bool = False,
) -> Slots:
    """Find service, date and time in ``text``, relative to ``now``.

    ``now`` must be aware (any zone; it is converted to the business zone).
    ``ref`` is the moment the conversation is about (the booking in
    progress, the appointment being moved): "same day" is its date and "an
    hour later" its time plus one hour. ``bare_hour`` reads a lone number as
    an hour ("make it 10 instead"), for when a time is what was asked.

    Example::

        now = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)   # 09:00 in New York
        s = extract_slots("3/14 at 9", now=now, business=business)
        s.date, s.time, s.datetime   # 2026-03-14, 09:00, 2026-03-14 09:00-04:00
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("extract_slots needs an aware 'now'")
    tz = business.tz
    now_local = now.astimezone(tz)
    if business.slot_reader is not None:
        # Another language's date words, written the way the rules below read them (bot/languages).
        text = business.slot_reader(text)
    # Keep digits as they are ("4" stays a number here, unlike for the
    # classifier) but expand "tmrw", "nxt" and friends.
    clean = expand_sms(normalize(text), numbers=False)

    found = find_service(clean, business)
    service = None if found is None else found.key

    part_match = _PART.search(clean)
    part = _PART_WORDS[part_match.group(1).replace(" ", "")] if part_match else None

    date: dt.date | None = None
    date_end: int | None = None
    date_match = _DATE.search(clean)
    if date_match is not None:
        phrase = _date_phrase(date_match, now_local.date())
        if isinstance(phrase, dt.date):
            date = phrase
        elif phrase:
            date = _parse_date(phrase, now_local, business.date_order)
        if date is not None and abs(date - now_local.date()) > _HORIZON:
            date = None
        if date is not None and (date_match.group("md") or date_match.group("dm") or date_match.group("num")):
            date = _honest(date, now_local.date(), date_match.group(0))
        date_end = date_match.end() if date is not None else None
        if date_match.group("rel") == "tonight" and part is None:
            part = "evening"

    if date is None and _NEXT_WEEK.search(clean):
        today = now_local.date()
        date = today + dt.timedelta(days=7 - today.weekday())
    if date is not None and date_match is not None and date_match.group("wd") and _NEXT_WEEK.search(clean):
        # "tuesday next week": that weekday in next week, whatever today is.
        today = now_local.date()
        monday = today + dt.timedelta(days=7 - today.weekday())
        date = monday + dt.timedelta(days=WEEKDAYS.index(_WEEKDAYS[date_match.group("wd")][:3]))  # type: ignore[arg-type]
    span = _business_span(business)
    time = _find_time(clean, part, span, date_end)
    if ref is not None:
        ref_local = ref.astimezone(tz)
        if date is None and _SAME_DAY.search(clean):
            date = ref_local.date()
        if time is None and _SAME_TIME.search(clean):
            time = ref_local.time().replace(second=0, microsecond=0)
        shift = _SHIFT.search(clean)
        if time is None and shift is not None:
            hours = 0.5 if shift.group("half") else float(_COUNT[shift.group("n")])
            later = (shift.group("dir") or shift.group("dir2")) in ("later", "after")
            moved = ref_local + dt.timedelta(hours=hours if later else -hours)
            time = moved.time().replace(second=0, microsecond=0)
            date = date or ref_local.date()
    if time is None and bare_hour and part is None:
        bare = _BARE.search(clean)
        if bare is not None:
            time = _bare_hour(int(bare.group("h")), 0, part, span)
    approximate = False
    window: tuple[dt.time, dt.time] | None = None
    if part is not None:
        start, end, default = _PARTS[part]
        if time is None:
            time, approximate, window = default, True, (start, end)

    moment = None
    in_past = False
    if date is not None and time is not None:
        moment = dt.datetime.combine(date, time, tzinfo=tz)
        in_past = moment < now_local
    elif date is not None:
        in_past = date < now_local.date()
    return Slots(
        service=service,
        date=date,
        time=time,
        datetime=moment,
        in_past=in_past,
        approximate=approximate,
        time_window=window,
    )

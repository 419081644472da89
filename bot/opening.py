"""Whether the business is open now, and when it next opens, in words.

One owner for "are you open now?", the hand-off's "we're open again Monday
8am" and the emergency reply's "we're closed now": all read the opening
hours of ``intents/business.yaml`` in the business time zone.

Example::

    status = opening_status(business, now)   # Sunday 10am in New York
    status.open_now, status.next_open_text   # (False, 'Monday 8am')
    status.today_text                        # 'closed today'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.business import Business
from bot.hours import TimeRange

#: How far ahead to look for the next opening (a week covers every schedule).
_LOOKAHEAD_DAYS = 8


@dataclass(frozen=True, slots=True)
class OpeningStatus:
    """The business's hours as seen at one moment (business-local).

    ``closes_text`` is the closing time of the current period ("5pm") when
    open; ``next_open_text`` says when it opens next ("today 9am",
    "tomorrow 8am", "Monday 8am"; blank when it never opens);
    ``today_text`` describes today's hours ("open today 8am-5pm", "closed today").
    """

    open_now: bool
    closes_text: str
    next_open: datetime | None
    next_open_text: str
    today_text: str


def _clock(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{hour}{suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d}{suffix}"


def _when_text(moment: datetime, now: datetime) -> str:
    days = (moment.date() - now.date()).days
    if days == 0:
        return f"today {_clock(moment)}"
    if days == 1:
        return f"tomorrow {_clock(moment)}"
    return f"{moment:%A} {_clock(moment)}"


def _periods(business: Business, day: datetime) -> list[tuple[datetime, datetime]]:
    ranges: tuple[TimeRange, ...] = business.ranges_on(day.date())
    tz = business.tz
    return [
        (datetime.combine(day.date(), r.start, tz), datetime.combine(day.date(), r.end, tz)) for r in ranges
    ]


def opening_status(business: Business, now: datetime) -> OpeningStatus:
    """Open now or not, and when next, for ``now`` (any aware time).

    >>> from datetime import datetime, timezone
    >>> s = opening_status(business, datetime(2026, 3, 8, 15, tzinfo=timezone.utc))  # doctest: +SKIP
    >>> s.open_now, s.next_open_text  # doctest: +SKIP
    (False, 'tomorrow 8am')
    """
    local = now.astimezone(business.tz)
    today = _periods(business, local)
    current = next(((start, end) for start, end in today if start <= local < end), None)
    today_text = (
        "open today " + ", ".join(r.text() for r in business.ranges_on(local.date()))
        if today
        else "closed today"
    )
    next_open: datetime | None = None
    for offset in range(_LOOKAHEAD_DAYS):
        day = local + timedelta(days=offset)
        starts = [start for start, _ in _periods(business, day) if start > local]
        if starts:
            next_open = min(starts)
            break
    return OpeningStatus(
        open_now=current is not None,
        closes_text=_clock(current[1]) if current else "",
        next_open=next_open,
        next_open_text=_when_text(next_open, local) if next_open else "",
        today_text=today_text,
    )

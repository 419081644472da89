"""Opening hours as data: each weekday's periods (``"08:00-17:00"``), and the lines that print them.

Part of the business file (``hours:`` in ``intents/business.yaml``,
:class:`bot.business.Business`): parsed strictly (in order, not overlapping,
closing after opening), frozen, and shown as ``Mon-Fri 8am-5pm``.

Example::

    hours = OpeningHours.model_validate({"mon": "08:00-17:00", "tue": ["08:00-12:00", "13:00-17:00"],
                                         "wed": "closed", "thu": "closed", "fri": "closed",
                                         "sat": "closed", "sun": "closed"})
    hours.on("tue")[1].text()      # "1pm-5pm"
    hours.lines()[0].days          # "Mon"
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
#: Weekday keys in :meth:`datetime.weekday` order (Monday = 0).
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True, slots=True)
class TimeRange:
    """One opening period of a day, wall-clock time in the business time zone."""

    start: time
    end: time

    def text(self) -> str:
        """Compact SMS-friendly form: ``8am-5pm``, ``8:30am-12pm``."""
        return f"{_clock_text(self.start)}-{_clock_text(self.end)}"


def _clock_text(moment: time) -> str:
    hour = moment.hour % 12 or 12
    suffix = "am" if moment.hour < 12 else "pm"
    return f"{hour}{suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d}{suffix}"


def _parse_ranges(value: Any) -> tuple[TimeRange, ...]:
    if isinstance(value, str) and value.strip().lower() == "closed":
        return ()
    items = value if isinstance(value, list) else [value]
    ranges: list[TimeRange] = []
    for item in items:
        match = _RANGE.match(item) if isinstance(item, str) else None
        if match is None:
            raise ValueError(f'expected "HH:MM-HH:MM", a list of them, or "closed"; got {item!r}')
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        try:
            start, end = time(h1, m1), time(h2, m2)
        except ValueError:
            raise ValueError(f"not a valid time of day in {item!r}") from None
        if end <= start:
            raise ValueError(f"closing time must be after opening time in {item!r}")
        if ranges and start < ranges[-1].end:
            raise ValueError(f"ranges must be in order and not overlap: {item!r}")
        ranges.append(TimeRange(start, end))
    return tuple(ranges)


class OpeningHours(BaseModel):
    """Opening periods for each weekday; an empty tuple means closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mon: tuple[TimeRange, ...]
    tue: tuple[TimeRange, ...]
    wed: tuple[TimeRange, ...]
    thu: tuple[TimeRange, ...]
    fri: tuple[TimeRange, ...]
    sat: tuple[TimeRange, ...]
    sun: tuple[TimeRange, ...]

    @field_validator("*", mode="before")
    @classmethod
    def _ranges(cls, value: Any) -> tuple[TimeRange, ...]:
        return _parse_ranges(value)

    def on(self, day: Weekday) -> tuple[TimeRange, ...]:
        """The opening periods of ``day`` (``"mon"`` ... ``"sun"``)."""
        ranges: tuple[TimeRange, ...] = getattr(self, day)
        return ranges

    def lines(self) -> tuple[HoursLine, ...]:
        """The week grouped into lines of consecutive days with equal hours.

        Example::

            [(l.days, l.hours) for l in business.hours.lines()]
            # [("Mon-Fri", "8am-5pm"), ("Sat", "9am-1pm"), ("Sun", "closed")]
        """
        lines: list[HoursLine] = []
        start = 0
        for index in range(1, len(WEEKDAYS) + 1):
            if index < len(WEEKDAYS) and self.on(WEEKDAYS[index]) == self.on(
                WEEKDAYS[start]
            ):
                continue
            first, last = WEEKDAYS[start], WEEKDAYS[index - 1]
            ranges = self.on(first)
            days = first.title() if first == last else f"{first.title()}-{last.title()}"
            hours = ", ".join(r.text() for r in ranges) if ranges else "closed"
            lines.append(HoursLine(days, hours, first, last, ranges))
            start = index
        return tuple(lines)



@dataclass(frozen=True, slots=True)
class HoursLine:
    """One line of the opening-hours text: consecutive days with equal hours.

    ``days`` and ``hours`` are ready to print (``"Mon-Fri"``, ``"8am-5pm"``);
    the other fields let a template format differently.
    """

    days: str
    hours: str
    first_day: Weekday
    last_day: Weekday
    ranges: tuple[TimeRange, ...]

    @property
    def closed(self) -> bool:
        return not self.ranges

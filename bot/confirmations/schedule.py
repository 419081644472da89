"""What ``business.yaml`` says about reminders, follow-ups after a visit, and recall.

```yaml
reminders:                      # when reminders go, before the appointment
  - before: 48h
  - before: 3h
    unless_confirmed: true      # only to patients who have not confirmed
after_visit:                    # optional, both off unless given
  follow_up: true               # the day after a completed visit: thanks + review link
  review_link: https://g.page/r/example/review
  no_show: true                 # after a no-show: "we missed you, want a new time?"
  send_at: "10:00"              # business-local time those go out the next day
recall:                         # optional, off by default
  enabled: false
  service: cleaning             # the last completed visit of this service counts
  after_days: 180               # invite when it is older than this
  rate_per_second: 1            # throttled like broadcasts
```

Without ``reminders:`` one reminder goes ``REMINDER_LEAD_HOURS`` before.

Example::

    step = ReminderStep(before="3h", unless_confirmed=True)
    step.lead            # timedelta(hours=3)
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|h|d)\s*$")
_UNITS: Final = {"m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_lead(raw: str | float) -> timedelta:
    """``"48h"``, ``"90m"``, ``"2d"``, or a number of hours, as a duration.

    >>> parse_lead("90m"), parse_lead(3)
    (datetime.timedelta(seconds=5400), datetime.timedelta(seconds=10800))
    """
    if isinstance(raw, int | float):
        seconds = float(raw) * 3600
    else:
        found = _DURATION.match(raw)
        if found is None:
            raise ValueError(f"{raw!r} is not a duration; write it like 48h, 90m or 2d")
        seconds = float(found.group(1)) * _UNITS[found.group(2)]
    if not 0 < seconds <= 14 * 86400:
        raise ValueError(f"{raw!r}: a reminder goes between a minute and 14 days before")
    return timedelta(seconds=seconds)


class ReminderStep(BaseModel):
    """One reminder of the schedule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    before: str | float
    #: Only to patients who have not confirmed yet (the "3 h before" nudge).
    unless_confirmed: bool = False

    @field_validator("before")
    @classmethod
    def _duration(cls, value: str | float) -> str | float:
        parse_lead(value)
        return value

    @property
    def lead(self) -> timedelta:
        return parse_lead(self.before)


class AfterVisit(BaseModel):
    """Messages the day after a visit (each optional)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    follow_up: bool = False
    review_link: str | None = Field(default=None, pattern=r"^https://\S+$")
    no_show: bool = False
    send_at: time = time(10, 0)


class Recall(BaseModel):
    """Invitations to book again when the last completed visit of a service is old (off by default)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = False
    service: str = "cleaning"
    after_days: int = Field(default=180, ge=1, le=3650)
    rate_per_second: float = Field(default=1.0, gt=0, le=100)

"""The figures clinics buy reminders for: how many appointments got confirmed, how few were missed.

Counted from the appointments' own status records over a range of
business-local days (``bot appointments stats --since DATE``, the staff
digest):

- **confirmation rate**: appointments confirmed at some point (by a reply,
  a button or staff), of those not cancelled;
- **no-show rate**: no-shows, of the visits whose outcome is known
  (completed + no-show).

A rate with nothing to count is ``None`` (shown as "n/a"), never a made-up 0%.

Example::

    figures = await figures_between(book, date(2026, 3, 1), date(2026, 3, 31))
    figures.confirmation_rate     # 0.82
    figures.lines()               # ["appointments: 40", "booked: 3", ...]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Protocol

from bot.confirmations.status import Status

#: The longest range one report reads (a day log per day).
MAX_DAYS = 400


class DayLog(Protocol):
    """What the figures read: a day's appointments (:class:`bot.appointments.AppointmentBook`)."""

    async def on_date(self, day: date, *, status: Status | None = None) -> Sequence[_Counted]: ...


class _Counted(Protocol):
    @property
    def status(self) -> Status: ...

    def changed_to(self, status: Status) -> object | None: ...


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts by status and the two rates over a set of appointments."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    #: Appointments confirmed at some point (even if completed or missed since).
    confirmed_ever: int = 0

    @property
    def confirmation_rate(self) -> float | None:
        kept = self.total - self.by_status.get(Status.CANCELLED.value, 0)
        return self.confirmed_ever / kept if kept else None

    @property
    def no_show_rate(self) -> float | None:
        missed = self.by_status.get(Status.NO_SHOW.value, 0)
        known = missed + self.by_status.get(Status.COMPLETED.value, 0)
        return missed / known if known else None

    def lines(self) -> list[str]:
        """The figures as lines of text (CLI and the digest's text part).

        >>> Figures(4, {"completed": 2, "no-show": 1, "cancelled": 1}, 2).lines()[-2:]
        ['confirmation rate: 67% (2 of 3 not cancelled)', 'no-show rate: 33% (1 of 3 visits)']
        """
        kept = self.total - self.by_status.get(Status.CANCELLED.value, 0)
        missed = self.by_status.get(Status.NO_SHOW.value, 0)
        known = missed + self.by_status.get(Status.COMPLETED.value, 0)
        out = [f"appointments: {self.total}"]
        out += [f"{s.value}: {self.by_status.get(s.value, 0)}" for s in Status]
        confirmed = f"({self.confirmed_ever} of {kept} not cancelled)"
        out.append(f"confirmation rate: {percent(self.confirmation_rate)} {confirmed}")
        out.append(f"no-show rate: {percent(self.no_show_rate)} ({missed} of {known} visits)")
        return out


def percent(rate: float | None) -> str:
    """``0.825`` -> ``"82%"``; None -> ``"n/a"``."""
    return "n/a" if rate is None else f"{round(rate * 100)}%"


def figures_of(appointments: Iterable[_Counted]) -> Figures:
    """The figures of ``appointments``."""
    found = list(appointments)
    counts = Counter(a.status.value for a in found)
    confirmed = sum(1 for a in found if a.changed_to(Status.CONFIRMED) is not None)
    return Figures(total=len(found), by_status=dict(counts), confirmed_ever=confirmed)


async def figures_between(book: DayLog, first: date, last: date) -> Figures:
    """The figures of every appointment on the business-local days ``first``..``last`` (at most :data:`MAX_DAYS`)."""
    days = min((last - first).days + 1, MAX_DAYS)
    found: list[_Counted] = []
    for n in range(max(days, 0)):
        found.extend(await book.on_date(first + timedelta(days=n)))
    return figures_of(found)


class _Labelled(Protocol):
    def labels(self, status: str) -> _Incrementable: ...


class _Incrementable(Protocol):
    def inc(self) -> None: ...


def status_counter(counter: _Labelled) -> Callable[[str, object, datetime], Awaitable[None]]:
    """An appointment-book observer counting each status reached in ``bot_appointments_total{status}``.

    Example::

        book.observers.append(status_counter(metrics.appointments))
    """
    statuses = {s.value for s in Status}

    async def observe(change: str, appt: object, at: datetime) -> None:
        if change in statuses:  # a reschedule is not a status
            counter.labels(status=change).inc()

    return observe

"""An appointment's status, as data: what it is, what it may become, and who changed it when.

``booked → confirmed → completed``, or ``cancelled`` / ``no-show``. Every
change is kept on the appointment as a :class:`StatusChange` (the new status,
when, and its :class:`Source`), so staff see who confirmed and when, and the
figures (:mod:`bot.confirmations.figures`) count from the record itself.

The allowed moves are one table, :data:`TRANSITIONS`: a cancelled
appointment stays cancelled (a new time is a new booking), a visit's outcome
(completed / no-show) may be corrected by staff, and a moved appointment is
``booked`` again (its confirmation was for the old time).

Example::

    check_transition(Status.BOOKED, Status.CONFIRMED)        # fine
    check_transition(Status.CANCELLED, Status.COMPLETED)     # StatusChangeError
    Status.parse("no show")                                  # Status.NO_SHOW
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from bot.errors import BotError


class Status(StrEnum):
    """Where an appointment stands."""

    BOOKED = "booked"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no-show"

    @classmethod
    def parse(cls, raw: str) -> Status:
        """``raw`` as a status; spaces, underscores and case are forgiven (``"No_Show"``).

        >>> Status.parse("No show")
        <Status.NO_SHOW: 'no-show'>
        """
        text = "-".join(raw.strip().lower().replace("_", " ").replace("-", " ").split())
        try:
            return cls(text)
        except ValueError:
            known = ", ".join(s.value for s in cls)
            raise StatusChangeError(f"unknown status {raw!r}; one of: {known}") from None


class Source(StrEnum):
    """Who or what changed a status."""

    REPLY = "reply"  # the patient's own words (a booking, "C", "can't make it")
    BUTTON = "button"  # a WhatsApp button (the reminder's Confirm)
    STAFF = "staff"  # `bot appointments mark`
    JOB = "job"  # a scheduled job


#: Statuses of appointments still to come (reminded, listed as "upcoming").
UPCOMING: Final = frozenset({Status.BOOKED, Status.CONFIRMED})

#: status -> the statuses it may become.
TRANSITIONS: Final[Mapping[Status, frozenset[Status]]] = {
    Status.BOOKED: frozenset({Status.CONFIRMED, Status.COMPLETED, Status.CANCELLED, Status.NO_SHOW}),
    # BOOKED again: the appointment moved, and the confirmation was for the old time.
    Status.CONFIRMED: frozenset({Status.BOOKED, Status.COMPLETED, Status.CANCELLED, Status.NO_SHOW}),
    # A visit's outcome may be corrected by staff.
    Status.COMPLETED: frozenset({Status.NO_SHOW}),
    Status.NO_SHOW: frozenset({Status.COMPLETED}),
    Status.CANCELLED: frozenset(),
}


class StatusChangeError(BotError):
    """A status change the model does not allow (or an unknown status)."""


def check_transition(current: Status, new: Status) -> None:
    """Raise :class:`StatusChangeError` unless ``current`` may become ``new`` (the same status is fine)."""
    if new != current and new not in TRANSITIONS[current]:
        raise StatusChangeError(f"an appointment that is {current.value} cannot become {new.value}")


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One change: the new status, when (epoch seconds) and by what.

    >>> StatusChange.from_list(["confirmed", 1772550000.0, "button"]).source
    <Source.BUTTON: 'button'>
    """

    status: Status
    at: float
    source: Source

    def to_list(self) -> list[str | float]:
        return [self.status.value, round(self.at, 3), self.source.value]

    @classmethod
    def from_list(cls, raw: list[str | float]) -> StatusChange:
        status, at, source = raw
        return cls(Status(str(status)), float(at), Source(str(source)))

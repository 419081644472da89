"""The dev server's clock: the wall clock, moved forward on request (``bot dev`` only).

Quiet hours, reminders and hand-offs depend on the time. In ``bot dev`` the
bot, the simulator and the dev phone share one :class:`DevClock`, so the
phone's *Advance* button (``POST /dev/api/clock``) moves all of them at once:
what was held for the night goes out, a hand-off runs out. Tests give the
dev server a :class:`~bot.clock.FrozenClock` instead; both can ``advance``.

Example::

    clock = DevClock()
    clock.advance(timedelta(hours=9, minutes=30))
    clock.now()          # the wall clock, 9 h 30 min ahead
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class AdjustableClock(Protocol):
    """A clock the dev phone can move forward (:class:`DevClock`, :class:`~bot.clock.FrozenClock`)."""

    def now(self) -> datetime: ...

    def timestamp(self) -> float: ...

    def advance(self, delta: timedelta) -> None: ...


class DevClock:
    """The wall clock plus an offset that only grows.

    Example::

        clock = DevClock()
        clock.advance(timedelta(days=1))
        clock.offset        # timedelta(days=1)
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def timestamp(self) -> float:
        return self.now().timestamp()

    def advance(self, delta: timedelta) -> None:
        if delta < timedelta(0):
            raise ValueError("time only moves forward")
        self.offset += delta

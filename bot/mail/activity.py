"""The day's activity for the staff digest: bookings, reschedules, cancellations,
hand-offs and opt-outs, recorded as they happen.

One tally per local day of the business (``activity:{<day>}``, hash-tagged
by the day, so one Redis Cluster slot; kept three days) in the ledger store:
each event is tallied once under its kind and id (a retried turn records
nothing new), and its outcome is a short JSON line that names no message body
and masks the number.

Example::

    activity = ActivityLog(stores.ledger, tz=business.tz)
    await activity.record("booked", at=now, ident="appt-1", text="Cleaning, Thu Dec 3 9:00 AM, +1415*****23")
    await activity.sections(date(2026, 12, 3))
    # [{"title": "Bookings", "entries": [...]}, ...]
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any, Final, Protocol
from zoneinfo import ZoneInfo

#: The digest's sections, in order: (kind recorded, title shown).
SECTIONS: Final = (
    ("booked", "Bookings"),
    ("rescheduled", "Reschedules"),
    ("cancelled", "Cancellations"),
    ("handoff", "Hand-offs to staff"),
    ("optout", "Opt-outs"),
)


#: A day's activity is kept this long (the digest reads it the same evening).
KEEP_SECONDS: Final = 3 * 24 * 3600


class Tally(Protocol):
    """The ledger store's once-per-member tally (:class:`bot.storage.ledger.LedgerStore`)."""

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool: ...

    async def tallies(self, key: str) -> dict[str, int]: ...


def activity_key(day: date) -> str:
    return "activity:{" + day.isoformat() + "}"


class ActivityLog:
    """Records the business's events per local day; reads them back by section."""

    def __init__(self, ledger: Tally, *, tz: ZoneInfo) -> None:
        self._ledger = ledger
        self._tz = tz

    async def record(self, kind: str, *, at: datetime, ident: str, text: str) -> None:
        """Record one event (idempotent per ``kind`` and ``ident``)."""
        day = at.astimezone(self._tz).date()
        line = json.dumps({"kind": kind, "at": at.timestamp(), "text": text}, sort_keys=True)
        await self._ledger.tally(activity_key(day), f"{kind}:{ident}", line, ttl=KEEP_SECONDS)

    async def entries(self, day: date) -> list[dict[str, Any]]:
        """The day's events, oldest first."""
        lines = [json.loads(line) for line in await self._ledger.tallies(activity_key(day))]
        return sorted(lines, key=lambda e: e["at"])

    async def sections(self, day: date) -> list[dict[str, Any]]:
        """The digest's sections for ``day``: every section, empty ones included."""
        entries = await self.entries(day)
        return [
            {"title": title, "entries": [e["text"] for e in entries if e["kind"] == kind]}
            for kind, title in SECTIONS
        ]

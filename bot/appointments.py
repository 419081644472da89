"""Appointments: the booking book on top of the storage primitives.

Records live under ``appt:{id}``; three sorted indexes find them:
``appts:user:{channel:bot:user}`` (a texter's appointments by start),
``appts:slots:{bot}:{YYYY-MM-DD}`` (a day's booked intervals, for overlaps) and
``appts:due`` (every booked appointment by start, for reminders). Booking is
one atomic "claim if free" on the day's intervals, so two people can't take
one slot at once and nobody waits on a lock.

Example::

    book = AppointmentBook(store)
    appt = await book.add(key, service="cleaning", start=start, duration_minutes=60, name="Ana")
    await book.upcoming_for(key, now=clock.now())  # [appt]
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import BotError
from bot.messages import Channel
from bot.storage.base import ConversationKey, ConversationStore

DUE_INDEX = "appts:due"
# Records outlive the appointment a little, for "how was your visit" later.
_RECORD_GRACE = timedelta(days=30)


class SlotTakenError(BotError):
    """The requested time overlaps another appointment."""


@dataclass(frozen=True, slots=True)
class Appointment:
    """One booked appointment. ``start`` is an aware datetime (UTC when loaded)."""

    id: str
    channel: Channel
    bot: str
    user: str
    service: str
    start: datetime
    duration_minutes: int
    name: str | None = None
    status: str = "booked"  # booked | cancelled

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, self.bot, self.user)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)

    def to_json(self) -> str:
        raw: dict[str, Any] = asdict(self)
        raw["channel"] = self.channel.value
        raw["start"] = self.start.astimezone(UTC).isoformat()
        return json.dumps(raw, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Appointment:
        data = json.loads(raw)
        data["channel"] = Channel(data["channel"])
        data["start"] = datetime.fromisoformat(data["start"])
        return cls(**data)


def _user_index(key: ConversationKey) -> str:
    return f"appts:user:{key.tag}"


def _day_index(bot: str, start: datetime, tz: Any) -> str:
    # Interval index (``<id>|<end>`` scored by start): who is busy when,
    # readable and claimable in one round trip without loading records.
    return f"appts:slots:{{{bot}}}:{start.astimezone(tz).date().isoformat()}"


@dataclass(frozen=True, slots=True)
class Busy:
    """A booked time on a day, without the rest of the appointment."""

    id: str
    start: datetime
    end: datetime


class AppointmentBook:
    """Books, lists, moves and cancels appointments. ``tz`` groups days (business time)."""

    def __init__(self, store: ConversationStore, tz: Any = UTC) -> None:
        self.store = store
        self.tz = tz

    async def get(self, appt_id: str) -> Appointment | None:
        raw = await self.store.get(f"appt:{appt_id}")
        return None if raw is None else Appointment.from_json(raw)

    async def busy(self, bot: str, day_start: datetime) -> list[Busy]:
        """The booked times on the business-local day of ``day_start`` (one round trip)."""
        found = await self.store.interval_range(_day_index(bot, day_start, self.tz), float("-inf"), float("inf"))
        return [Busy(i.ident, datetime.fromtimestamp(i.start, UTC), datetime.fromtimestamp(i.end, UTC))
                for i in found]

    async def on_day(self, bot: str, day_start: datetime) -> list[Appointment]:
        """Booked appointments on the business-local day of ``day_start``."""
        return await self._load([b.id for b in await self.busy(bot, day_start)])

    async def is_free(self, bot: str, start: datetime, duration_minutes: int, *, ignore: str | None = None) -> bool:
        end = start + timedelta(minutes=duration_minutes)
        return not any(b.id != ignore and b.start < end and start < b.end for b in await self.busy(bot, start))

    async def add(
        self,
        key: ConversationKey,
        *,
        service: str,
        start: datetime,
        duration_minutes: int,
        name: str | None = None,
        now: datetime,
    ) -> Appointment:
        """Book, or raise :class:`SlotTakenError` when the time overlaps another booking.

        The overlap check and the booking are one atomic step in the store
        (:meth:`~bot.storage.base.ConversationStore.interval_claim`), so two
        people racing for one slot can't both get it, and nobody waits on a lock.
        """
        appt = Appointment(
            id=secrets.token_hex(6), channel=key.channel, bot=key.bot, user=key.user,
            service=service, start=start.astimezone(UTC), duration_minutes=duration_minutes, name=name,
        )
        # The record first: a crash before the claim leaves an unindexed
        # record that expires, never a claimed slot without a record.
        await self.store.set(f"appt:{appt.id}", appt.to_json(), ttl=self._ttl(appt, now))
        if not await self._claim(appt):
            await self.store.delete(f"appt:{appt.id}")
            raise SlotTakenError(f"{start.isoformat()} is taken")
        await self._index(appt)
        return appt

    async def move(self, appt: Appointment, start: datetime, *, now: datetime) -> Appointment:
        """Reschedule ``appt`` to ``start`` (same service and duration)."""
        moved = replace(appt, start=start.astimezone(UTC))
        if not await self._claim(moved):
            raise SlotTakenError(f"{start.isoformat()} is taken")
        old_day, new_day = _day_index(appt.bot, appt.start, self.tz), _day_index(moved.bot, moved.start, self.tz)
        if old_day != new_day:
            await self.store.interval_remove(old_day, appt.id)
        await self.store.set(f"appt:{moved.id}", moved.to_json(), ttl=self._ttl(moved, now))
        await self._index(moved)
        return moved

    async def cancel(self, appt: Appointment, *, now: datetime) -> Appointment:
        cancelled = replace(appt, status="cancelled")
        await self.store.interval_remove(_day_index(appt.bot, appt.start, self.tz), appt.id)
        await self.store.index_remove(_user_index(appt.key), appt.id)
        await self.store.index_remove(DUE_INDEX, appt.id)
        await self.store.set(f"appt:{appt.id}", cancelled.to_json(), ttl=self._ttl(appt, now))
        return cancelled

    async def upcoming_for(self, key: ConversationKey, *, now: datetime) -> list[Appointment]:
        return await self._load(await self.store.index_range(_user_index(key), now.timestamp(), float("inf")))

    async def due_between(self, start: datetime, end: datetime) -> list[Appointment]:
        """Booked appointments starting in [start, end] (for reminders)."""
        return await self._load(await self.store.index_range(DUE_INDEX, start.timestamp(), end.timestamp()))

    async def _load(self, ids: list[str]) -> list[Appointment]:
        raws = await self.store.get_many([f"appt:{i}" for i in ids])
        found = [Appointment.from_json(raw) for raw in raws if raw is not None]
        return [a for a in found if a.status == "booked"]

    async def _claim(self, appt: Appointment) -> bool:
        return await self.store.interval_claim(
            _day_index(appt.bot, appt.start, self.tz), appt.id, appt.start.timestamp(), appt.end.timestamp()
        )

    async def _index(self, appt: Appointment) -> None:
        score = appt.start.timestamp()
        await self.store.index_add(_user_index(appt.key), appt.id, score)
        await self.store.index_add(DUE_INDEX, appt.id, score)

    @staticmethod
    def _ttl(appt: Appointment, now: datetime) -> float:
        return max(60.0, (appt.end + _RECORD_GRACE - now).total_seconds())

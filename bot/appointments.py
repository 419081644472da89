"""Appointments: the booking book on top of the storage primitives.

Records live under ``appt:{id}``; three sorted indexes find them:
``appts:user:{channel:bot:user}`` (a texter's appointments by start),
``appts:day:{bot}:{YYYY-MM-DD}`` (a day's appointments, for overlaps) and
``appts:due`` (every booked appointment by start, for reminders). Booking
takes a short per-day lock so two people can't take one slot at once.

Example::

    book = AppointmentBook(store)
    appt = await book.add(key, service="cleaning", start=start, duration_minutes=60, name="Ana")
    await book.upcoming_for(key, now=clock.now())  # [appt]
"""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.errors import BotError, StoreError
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
    return f"appts:day:{bot}:{start.astimezone(tz).date().isoformat()}"


class AppointmentBook:
    """Books, lists, moves and cancels appointments. ``tz`` groups days (business time)."""

    def __init__(self, store: ConversationStore, tz: Any = UTC) -> None:
        self.store = store
        self.tz = tz

    async def get(self, appt_id: str) -> Appointment | None:
        raw = await self.store.get(f"appt:{appt_id}")
        return None if raw is None else Appointment.from_json(raw)

    async def on_day(self, bot: str, day_start: datetime) -> list[Appointment]:
        """Booked appointments on the business-local day of ``day_start``."""
        ids = await self.store.index_range(_day_index(bot, day_start, self.tz), float("-inf"), float("inf"))
        found = [await self.get(i) for i in ids]
        return [a for a in found if a is not None and a.status == "booked"]

    async def is_free(self, bot: str, start: datetime, duration_minutes: int, *, ignore: str | None = None) -> bool:
        end = start + timedelta(minutes=duration_minutes)
        for appt in await self.on_day(bot, start):
            if appt.id != ignore and appt.start < end and start < appt.end:
                return False
        return True

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
        """Book, or raise :class:`SlotTakenError` when the time overlaps another booking."""
        appt = Appointment(
            id=secrets.token_hex(6), channel=key.channel, bot=key.bot, user=key.user,
            service=service, start=start.astimezone(UTC), duration_minutes=duration_minutes, name=name,
        )
        async with self._day_lock(key.bot, start):
            if not await self.is_free(key.bot, start, duration_minutes):
                raise SlotTakenError(f"{start.isoformat()} is taken")
            await self._write(appt, now)
        return appt

    async def move(self, appt: Appointment, start: datetime, *, now: datetime) -> Appointment:
        """Reschedule ``appt`` to ``start`` (same service and duration)."""
        moved = replace(appt, start=start.astimezone(UTC))
        async with self._day_lock(appt.bot, start):
            if not await self.is_free(appt.bot, start, appt.duration_minutes, ignore=appt.id):
                raise SlotTakenError(f"{start.isoformat()} is taken")
            await self.store.index_remove(_day_index(appt.bot, appt.start, self.tz), appt.id)
            await self._write(moved, now)
        return moved

    async def cancel(self, appt: Appointment, *, now: datetime) -> Appointment:
        cancelled = replace(appt, status="cancelled")
        await self.store.index_remove(_day_index(appt.bot, appt.start, self.tz), appt.id)
        await self.store.index_remove(_user_index(appt.key), appt.id)
        await self.store.index_remove(DUE_INDEX, appt.id)
        await self.store.set(f"appt:{appt.id}", cancelled.to_json(), ttl=self._ttl(appt, now))
        return cancelled

    async def upcoming_for(self, key: ConversationKey, *, now: datetime) -> list[Appointment]:
        ids = await self.store.index_range(_user_index(key), now.timestamp(), float("inf"))
        found = [await self.get(i) for i in ids]
        return [a for a in found if a is not None and a.status == "booked"]

    async def due_between(self, start: datetime, end: datetime) -> list[Appointment]:
        """Booked appointments starting in [start, end] (for reminders)."""
        ids = await self.store.index_range(DUE_INDEX, start.timestamp(), end.timestamp())
        found = [await self.get(i) for i in ids]
        return [a for a in found if a is not None and a.status == "booked"]

    async def _write(self, appt: Appointment, now: datetime) -> None:
        await self.store.set(f"appt:{appt.id}", appt.to_json(), ttl=self._ttl(appt, now))
        score = appt.start.timestamp()
        await self.store.index_add(_day_index(appt.bot, appt.start, self.tz), appt.id, score)
        await self.store.index_add(_user_index(appt.key), appt.id, score)
        await self.store.index_add(DUE_INDEX, appt.id, score)

    @staticmethod
    def _ttl(appt: Appointment, now: datetime) -> float:
        return max(60.0, (appt.end + _RECORD_GRACE - now).total_seconds())

    def _day_lock(self, bot: str, start: datetime) -> _Lock:
        return _Lock(self.store, "lock:" + _day_index(bot, start, self.tz))


class _Lock:
    """A short lease lock on one store key (booking is rare; contention tiny)."""

    def __init__(self, store: ConversationStore, key: str) -> None:
        self.store, self.key, self.token = store, key, secrets.token_hex(8)

    async def __aenter__(self) -> None:
        for _ in range(200):
            if await self.store.set(self.key, self.token, ttl=5, only_if_absent=True):
                return
            await asyncio.sleep(0.01)
        raise StoreError(f"could not lock {self.key}")

    async def __aexit__(self, *exc: object) -> None:
        if await self.store.get(self.key) == self.token:
            await self.store.delete(self.key)

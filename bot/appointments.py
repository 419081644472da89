"""Appointments: the booking book on top of the appointment store.

Records, resource calendars and indexes live in an
:class:`~bot.storage.appointments.AppointmentStore` (keys and hash tags
documented there). Booking is one atomic "hold this time on the first of
these resources that is free" on the business day's calendar, so two
people can't take one chair at once, parallel bookings go to the free
chairs, and nobody waits on a lock. Which resources can do a service comes
from the business (``resources:`` in ``business.yaml``); without any, every
service books the one implicit resource, :data:`DEFAULT_RESOURCE`.

Example::

    book = AppointmentBook(stores.appointments, business.tz, resources=business)
    appt = await book.add(key, service="cleaning", start=start, duration_minutes=60, name="Ana", now=now)
    appt.resource                                # "chair-1"
    await book.upcoming_for(key, now=clock.now())  # [appt]
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from bot.business import DEFAULT_RESOURCE
from bot.channels import records_key
from bot.confirmations.status import UPCOMING, Source, Status, StatusChange, check_transition
from bot.errors import BotError
from bot.messages import Channel
from bot.storage.appointments import AppointmentStore
from bot.storage.base import ConversationKey

# Records outlive the appointment a little, for "how was your visit" later.
_RECORD_GRACE = timedelta(days=30)
# Completed visits and no-shows: for recall (after_days, up to a year or so) and the figures.
_VISIT_KEPT = timedelta(days=400)


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
    status: Status = Status.BOOKED  # bot/confirmations/status.py
    resource: str = DEFAULT_RESOURCE  # the chair, provider or stylist it holds
    #: Every status change, oldest first: the status, when, and who (patient, button, staff, job).
    changes: tuple[StatusChange, ...] = ()
    #: When each of its reminders was queued (epoch seconds), oldest first: replies are read against the latest.
    reminded: tuple[float, ...] = ()

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, self.bot, self.user)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(minutes=self.duration_minutes)

    @property
    def upcoming(self) -> bool:
        """Booked or confirmed: still to come (its time may have passed, its outcome not known yet)."""
        return self.status in UPCOMING

    def changed_to(self, status: Status) -> StatusChange | None:
        """The latest change to ``status``, if it ever had it."""
        return next((c for c in reversed(self.changes) if c.status == status), None)

    def with_status(self, status: Status, *, at: datetime, source: Source) -> Appointment:
        """This appointment with ``status``, the change recorded (raises on a move the model forbids)."""
        check_transition(self.status, status)
        return replace(self, status=status, changes=(*self.changes, StatusChange(status, at.timestamp(), source)))

    def summary(self) -> dict[str, Any]:
        """What the dev phone's conversation view shows: id, service, start, status and each change.

        >>> appt.summary()["changes"]   # doctest: +SKIP
        [{"status": "booked", "at": "2026-03-02T14:00:00+00:00", "source": "reply"}, ...]
        """
        return {"id": self.id, "service": self.service, "start": self.start.astimezone(UTC).isoformat(),
                "status": self.status.value,
                "changes": [{"status": c.status.value, "at": datetime.fromtimestamp(c.at, UTC).isoformat(),
                             "source": c.source.value} for c in self.changes]}

    def to_json(self) -> str:
        raw: dict[str, Any] = asdict(self)
        raw["channel"] = self.channel.value
        raw["status"] = self.status.value
        raw["start"] = self.start.astimezone(UTC).isoformat()
        raw["changes"] = [c.to_list() for c in self.changes]
        return json.dumps(raw, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Appointment:
        data = json.loads(raw)
        data["channel"] = Channel(data["channel"])
        data["start"] = datetime.fromisoformat(data["start"])
        data["status"] = Status(data.get("status", Status.BOOKED))
        data["changes"] = tuple(StatusChange.from_list(c) for c in data.get("changes", ()))
        data["reminded"] = tuple(data.get("reminded", ()))
        return cls(**data)


class ResourcePlan(Protocol):
    """Which resources there are and which can do a service (:class:`~bot.business.Business` is one)."""

    @property
    def resource_keys(self) -> tuple[str, ...]:
        """Every resource, in order of preference."""
        ...

    def resources_for(self, service: str) -> Sequence[str]:
        """The resources that can do ``service``, in order of preference."""
        ...


def _owner(key: ConversationKey) -> str:
    return key.tag.strip("{}")


def _calendar(bot: str, start: datetime, tz: Any) -> str:
    # One calendar per business day: its hash tag keeps the day's claims on one slot.
    return f"{bot}:{start.astimezone(tz).date().isoformat()}"


@dataclass(frozen=True, slots=True)
class Busy:
    """A booked time on a day, without the rest of the appointment."""

    id: str
    start: datetime
    end: datetime
    resource: str = DEFAULT_RESOURCE


class AppointmentBook:
    """Books, lists, moves and cancels appointments. ``tz`` groups days (business time)."""

    def __init__(
        self,
        store: AppointmentStore,
        tz: Any = UTC,
        *,
        resources: ResourcePlan | None = None,
        observers: Sequence[Callable[[str, Appointment, datetime], Awaitable[None]]] = (),
    ) -> None:
        self.store = store
        self.tz = tz
        self.plan = resources
        #: Told of each booking, move and cancellation: ("booked" | "rescheduled" | "cancelled", appointment,
        #: time): the appointment figures, and the staff digest's activity log. A list, because a Brain shared
        #: by several runtimes (replay) hears each runtime's observers only while that runtime lives.
        self.observers: list[Callable[[str, Appointment, datetime], Awaitable[None]]] = list(observers)

    async def _tell(self, change: str, appt: Appointment, now: datetime) -> None:
        for observe in self.observers:
            await observe(change, appt, now)

    def resources_for(self, service: str) -> tuple[str, ...]:
        """The resources that can do ``service`` (the implicit one without a plan)."""
        if self.plan is None:
            return (DEFAULT_RESOURCE,)
        return tuple(self.plan.resources_for(service)) or (DEFAULT_RESOURCE,)

    async def get(self, appt_id: str) -> Appointment | None:
        raw = await self.store.get(appt_id)
        return None if raw is None else Appointment.from_json(raw)

    async def busy(self, bot: str, day_start: datetime) -> list[Busy]:
        """The booked times on the business-local day of ``day_start`` (one round trip).

        One entry per appointment, on whichever resource it holds: with
        several resources a time may be busy here and still bookable
        (:meth:`is_free`, :meth:`free_resources`).
        """
        found = await self.store.holds(_calendar(bot, day_start, self.tz))
        return [Busy(h.ident, datetime.fromtimestamp(h.start, UTC), datetime.fromtimestamp(h.end, UTC), h.resource)
                for h in found]

    async def on_day(self, bot: str, day_start: datetime) -> list[Appointment]:
        """Booked appointments on the business-local day of ``day_start``."""
        return await self._load([b.id for b in await self.busy(bot, day_start)])

    async def free_resources(
        self, bot: str, start: datetime, duration_minutes: int, *, service: str | None = None,
        ignore: str | None = None, resources: Sequence[str] | None = None,
    ) -> list[str]:
        """The resources able to do ``service`` (all known without one; ``resources`` when given) free then."""
        return free_of(await self.busy(bot, start), tuple(resources or self._candidates(service)), start,
                       start + timedelta(minutes=duration_minutes), ignore=ignore)

    async def is_free(
        self, bot: str, start: datetime, duration_minutes: int, *, ignore: str | None = None,
        service: str | None = None, resources: Sequence[str] | None = None,
    ) -> bool:
        """Whether some resource able to do ``service`` (one of ``resources``) is free for the whole time."""
        return bool(await self.free_resources(bot, start, duration_minutes, service=service, ignore=ignore,
                                              resources=resources))

    def _candidates(self, service: str | None) -> tuple[str, ...]:
        if service is not None or self.plan is None:
            return self.resources_for(service or "")
        return self.plan.resource_keys or (DEFAULT_RESOURCE,)

    async def add(
        self,
        key: ConversationKey,
        *,
        service: str,
        start: datetime,
        duration_minutes: int,
        name: str | None = None,
        now: datetime,
        source: Source = Source.REPLY,
        resources: Sequence[str] | None = None,
    ) -> Appointment:
        """Book on a free resource able to do ``service`` (one of ``resources``, in order, when the
        texter asked for one), or raise :class:`SlotTakenError`.

        The overlap check and the hold are one atomic step in the store
        (:meth:`~bot.storage.appointments.AppointmentStore.claim`), so two
        people racing for one slot can't both get one resource, and nobody
        waits on a lock.
        """
        # A booking made by phone belongs to the texter from that number.
        key = records_key(key)
        appt = Appointment(
            id=secrets.token_hex(6), channel=key.channel, bot=key.bot, user=key.user,
            service=service, start=start.astimezone(UTC), duration_minutes=duration_minutes, name=name,
            changes=(StatusChange(Status.BOOKED, now.timestamp(), source),),
        )
        # The record first: a crash before the claim leaves an unindexed
        # record that expires, never a claimed slot without a record.
        await self.store.put(appt.id, appt.to_json(), ttl=self._ttl(appt, now))
        resource = await self._claim(appt, tuple(resources or self.resources_for(service)))
        if resource is None:
            await self.store.delete(appt.id)
            raise SlotTakenError(f"{start.isoformat()} is taken")
        if resource != appt.resource:
            appt = replace(appt, resource=resource)
            await self.store.put(appt.id, appt.to_json(), ttl=self._ttl(appt, now))
        await self.store.index(_owner(appt.key), appt.id, appt.start.timestamp())
        await self.store.log_day(self._day(appt.start), appt.id, appt.start.timestamp())
        await self._tell("booked", appt, now)
        return appt

    async def move(
        self, appt: Appointment, start: datetime, *, now: datetime, source: Source = Source.REPLY
    ) -> Appointment:
        """Reschedule ``appt`` to ``start`` (same service and duration; its resource if free).

        A confirmed appointment is ``booked`` again: the confirmation was for the old time.
        """
        moved = replace(appt, start=start.astimezone(UTC))
        if moved.status == Status.CONFIRMED:
            moved = moved.with_status(Status.BOOKED, at=now, source=source)
        able = self.resources_for(appt.service)
        preferred = (appt.resource, *[r for r in able if r != appt.resource]) if appt.resource in able else able
        resource = await self._claim(moved, preferred)
        if resource is None:
            raise SlotTakenError(f"{start.isoformat()} is taken")
        moved = replace(moved, resource=resource)
        old_day, new_day = _calendar(appt.bot, appt.start, self.tz), _calendar(moved.bot, moved.start, self.tz)
        if old_day != new_day:
            await self.store.release(old_day, appt.id)
        await self.store.put(moved.id, moved.to_json(), ttl=self._ttl(moved, now))
        await self.store.unindex(_owner(appt.key), appt.id, appt.start.timestamp())
        await self.store.index(_owner(moved.key), moved.id, moved.start.timestamp())
        if self._day(appt.start) != self._day(moved.start):
            await self.store.unlog_day(self._day(appt.start), appt.id)
        await self.store.log_day(self._day(moved.start), moved.id, moved.start.timestamp())
        await self._tell("rescheduled", moved, now)
        return moved

    async def cancel(self, appt: Appointment, *, now: datetime, source: Source = Source.REPLY) -> Appointment:
        cancelled = appt.with_status(Status.CANCELLED, at=now, source=source)
        await self.store.release(_calendar(appt.bot, appt.start, self.tz), appt.id)
        await self.store.unindex(_owner(appt.key), appt.id, appt.start.timestamp())
        await self.store.put(appt.id, cancelled.to_json(), ttl=self._ttl(appt, now))
        await self._tell("cancelled", cancelled, now)
        return cancelled

    async def set_status(self, appt: Appointment, status: Status, *, now: datetime, source: Source) -> Appointment:
        """Change ``appt``'s status (recorded with ``source`` and ``now``); the same status changes nothing.

        Cancelling frees its time (:meth:`cancel`); a move the status model
        forbids raises :class:`~bot.confirmations.status.StatusChangeError`.

        Example::

            appt = await book.set_status(appt, Status.CONFIRMED, now=clock.now(), source=Source.BUTTON)
            appt.changes[-1].source    # Source.BUTTON
        """
        if status == appt.status:
            return appt
        if status == Status.CANCELLED:
            return await self.cancel(appt, now=now, source=source)
        changed = appt.with_status(status, at=now, source=source)
        await self.store.put(changed.id, changed.to_json(), ttl=self._ttl(changed, now))
        await self._tell(status.value, changed, now)
        return changed

    async def note_reminder(self, appt: Appointment, *, at: datetime) -> Appointment:
        """Record that a reminder of ``appt`` was queued at ``at`` (read back by :meth:`latest_reminded`)."""
        current = await self.get(appt.id) or appt  # the stored record: a status may have changed meanwhile
        noted = replace(current, reminded=(*current.reminded, at.timestamp()))
        await self.store.put(noted.id, noted.to_json(), ttl=self._ttl(noted, at))
        return noted

    async def latest_reminded(self, key: ConversationKey, *, now: datetime) -> Appointment | None:
        """The upcoming appointment of ``key`` whose reminder went out last, if any was reminded.

        A reply to a reminder ("C", "can't make it") means this one, however
        long after the reminder it comes, while the appointment is upcoming.
        """
        reminded = [a for a in await self.upcoming_for(key, now=now) if a.reminded]
        return max(reminded, key=lambda a: a.reminded[-1], default=None)

    async def booked_by(self, key: ConversationKey) -> list[Appointment]:
        """Every appointment of ``key``'s patient (a caller's are their texts'), whatever its status, by start."""
        ids = await self.store.owned(_owner(records_key(key)), float("-inf"), float("inf"))
        return [Appointment.from_json(raw) for raw in await self.store.get_many(ids) if raw is not None]

    async def later_than(self, appt: Appointment) -> list[Appointment]:
        """Every appointment of ``appt``'s patient starting after it, whatever its status (recall)."""
        ids = await self.store.owned(_owner(appt.key), appt.start.timestamp() + 1, float("inf"))
        return [Appointment.from_json(raw) for raw in await self.store.get_many(ids) if raw is not None]

    async def on_date(self, day: date, *, status: Status | None = None) -> list[Appointment]:
        """Every appointment of the business-local ``day`` (cancelled ones too), earliest first;
        only those with ``status`` when given (``bot appointments list``)."""
        raws = await self.store.get_many(await self.store.day_log(day.isoformat()))
        found = [Appointment.from_json(raw) for raw in raws if raw is not None]
        return [a for a in found if status is None or a.status == status]

    @staticmethod
    def belongs_to(appt: Appointment, key: ConversationKey) -> bool:
        """Whether ``appt`` is the patient's of conversation ``key`` (a caller's are their texts')."""
        return appt.key == records_key(key)

    async def upcoming_for(self, key: ConversationKey, *, now: datetime) -> list[Appointment]:
        return await self._load(await self.store.owned(_owner(records_key(key)), now.timestamp(), float("inf")))

    async def due_between(self, start: datetime, end: datetime) -> list[Appointment]:
        """Booked appointments starting in [start, end] (for reminders)."""
        return await self._load(await self.store.due(start.timestamp(), end.timestamp()))

    async def _load(self, ids: list[str]) -> list[Appointment]:
        raws = await self.store.get_many(ids)
        found = [Appointment.from_json(raw) for raw in raws if raw is not None]
        return [a for a in found if a.upcoming]

    async def _claim(self, appt: Appointment, resources: Sequence[str]) -> str | None:
        return await self.store.claim(
            _calendar(appt.bot, appt.start, self.tz), appt.id, appt.start.timestamp(), appt.end.timestamp(),
            resources,
        )

    def _day(self, start: datetime) -> str:
        return start.astimezone(self.tz).date().isoformat()

    @staticmethod
    def _ttl(appt: Appointment, now: datetime) -> float:
        # A visit's outcome is kept longer: recall and the figures read it months later.
        grace = _VISIT_KEPT if appt.status in (Status.COMPLETED, Status.NO_SHOW) else _RECORD_GRACE
        return max(60.0, (appt.end + grace - now).total_seconds())


def free_of(
    busy: Sequence[Busy], resources: Sequence[str], start: datetime, end: datetime, *, ignore: str | None = None
) -> list[str]:
    """Which of ``resources`` no entry of ``busy`` (but ``ignore``) overlaps in ``[start, end)``.

    Example::

        free_of(await book.busy(bot, day), ("chair-1", "chair-2"), ten, eleven)   # ["chair-2"]
    """
    taken = {b.resource for b in busy if b.id != ignore and b.start < end and start < b.end}
    return [r for r in resources if r not in taken]

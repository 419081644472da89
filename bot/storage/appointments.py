"""The appointment store: records, calendars of resources, and the indexes that find them.

:class:`~bot.appointments.AppointmentBook` books on top of it. A *calendar*
is one business's day (``+15005550006:2026-03-03``); it holds every booked
interval of that day, each on one *resource* (a chair, a provider, a
stylist). :meth:`AppointmentStore.claim` is the one atomic step booking needs:
"hold this time on the first of these resources that is free then", so two
people can never get one resource at one time, and parallel bookings spread
over the free ones, without a lock.

Keys (Redis) and their hash tags, so every script touches one cluster slot:

- ``appts:{<bot>:<day>}:holds``: the calendar, a sorted set of
  ``<id>|<resource>|<end>`` scored by start (per business calendar day);
- ``appt:{<id>}``: one appointment's record (JSON);
- ``appts:user:{<channel>:<bot>:<user>}``: a texter's appointments by start
  (per conversation);
- ``appts:due:{<minute>}``: appointments by start, one bucket per start
  minute (epoch minutes), for reminders: no single hot key holds them all;
- ``appts:day:{<date>}``: every appointment of a business-local day by start,
  cancelled ones included (``bot appointments list``, the figures), kept
  :data:`DAY_LOG_SECONDS`.

Two implementations, memory and Redis, held to
``tests/bot/storage/test_appointments_contract.py``.

Example::

    store = RedisAppointmentStore(backend)
    await store.claim("+15005550006:2026-03-03", "a1", 900.0, 960.0, ["chair-1", "chair-2"])  # "chair-1"
    await store.claim("+15005550006:2026-03-03", "b2", 930.0, 990.0, ["chair-1", "chair-2"])  # "chair-2"
    await store.claim("+15005550006:2026-03-03", "c3", 930.0, 990.0, ["chair-1", "chair-2"])  # None
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from bot.storage.backend import MemoryValues, RedisBackend

#: Separates the parts of a calendar member: ``<id>|<resource>|<end>``.
SEP: Final = "|"
#: Seconds per reminder bucket (``appts:due:{<minute>}``).
DUE_BUCKET_SECONDS: Final = 60
#: How long a day's log of appointments is kept after its last change (a year and a bit, for the figures).
DAY_LOG_SECONDS: Final = 400 * 24 * 3600

# KEYS: calendar. ARGV: ident, start, end, member prefix ('<ident>|'),
# then the candidate resources in order of preference. Members are
# '<id>|<resource>|<end>' scored by start; a resource is busy when one of its
# members starts before our end and ends after our start. The ident's own
# earlier hold (any resource) is replaced: a move.
_CLAIM = """
local start, finish = tonumber(ARGV[2]), tonumber(ARGV[3])
local busy, mine = {}, {}
local all = redis.call('ZRANGE', KEYS[1], '-inf', '(' .. ARGV[3], 'BYSCORE')
for _, m in ipairs(all) do
  local first = string.find(m, '|', 1, true)
  local last = string.find(m, '|[^|]*$')
  if string.sub(m, 1, first - 1) == ARGV[1] then table.insert(mine, m)
  elseif tonumber(string.sub(m, last + 1)) > start then busy[string.sub(m, first + 1, last - 1)] = true end
end
local chosen = nil
for i = 5, #ARGV do
  if not busy[ARGV[i]] then chosen = ARGV[i] break end
end
if not chosen then return false end
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], '(' .. ARGV[3], '+inf', 'BYSCORE')) do
  if string.sub(m, 1, string.len(ARGV[4])) == ARGV[4] then table.insert(mine, m) end
end
for _, m in ipairs(mine) do redis.call('ZREM', KEYS[1], m) end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4] .. chosen .. '|' .. ARGV[3])
return chosen
"""

# KEYS: calendar. ARGV: member prefix ('<ident>|').
_RELEASE = """
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, 1, string.len(ARGV[1])) == ARGV[1] then redis.call('ZREM', KEYS[1], m) end
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Hold:
    """One appointment's interval on one resource of a calendar."""

    ident: str
    resource: str
    start: float
    end: float


def hold_member(ident: str, resource: str, end: float) -> str:
    """The calendar member of a hold; names may not contain :data:`SEP`."""
    for name in (ident, resource):
        if not name or SEP in name:
            raise ValueError(f"an appointment id or resource may not be empty or contain {SEP!r}: {name!r}")
    return f"{ident}{SEP}{resource}{SEP}{end!r}"


def hold_from(member: str, score: float) -> Hold:
    ident, _, rest = member.partition(SEP)
    resource, _, end = rest.rpartition(SEP)
    return Hold(ident, resource, score, float(end))


def due_buckets(low: float, high: float) -> range:
    """The reminder buckets (epoch minutes) that starts in ``[low, high]`` fall in."""
    return range(math.floor(low / DUE_BUCKET_SECONDS), math.floor(high / DUE_BUCKET_SECONDS) + 1)


def calendar_key(calendar: str) -> str:
    return "appts:{" + calendar + "}:holds"


def record_key(ident: str) -> str:
    return "appt:{" + ident + "}"


def owner_key(owner: str) -> str:
    return "appts:user:{" + owner + "}"


def due_key(bucket: int) -> str:
    return "appts:due:{" + str(bucket) + "}"


def day_key(day: str) -> str:
    return "appts:day:{" + day + "}"


class AppointmentStore(Protocol):
    """Storage for appointments. Implementations: memory, Redis."""

    async def claim(self, calendar: str, ident: str, start: float, end: float, resources: Sequence[str]) -> str | None:
        """Hold ``[start, end)`` for ``ident`` on the first of ``resources`` free then; return it.

        Atomic. An earlier hold of ``ident`` on this calendar is replaced (a
        move), and never counts as busy. None, changing nothing, when every
        resource is taken (or none is given).
        """
        ...

    async def holds(self, calendar: str) -> list[Hold]:
        """Every hold on ``calendar``, earliest first (one round trip)."""
        ...

    async def release(self, calendar: str, ident: str) -> None:
        """Drop ``ident``'s hold from ``calendar`` (nothing when absent)."""
        ...

    async def put(self, ident: str, record: str, *, ttl: float) -> None:
        """Write the appointment's record (JSON), expiring after ``ttl`` seconds."""
        ...

    async def get(self, ident: str) -> str | None: ...

    async def get_many(self, idents: Sequence[str]) -> list[str | None]:
        """The records of ``idents`` in order (None where missing), in one round trip."""
        ...

    async def delete(self, ident: str) -> None: ...

    async def index(self, owner: str, ident: str, start: float) -> None:
        """Find ``ident`` by its owner (a conversation) and among the starts due for reminders."""
        ...

    async def unindex(self, owner: str, ident: str, start: float) -> None:
        """Undo :meth:`index` (``start`` as indexed)."""
        ...

    async def owned(self, owner: str, low: float, high: float) -> list[str]:
        """The owner's appointment ids starting in ``[low, high]``, earliest first."""
        ...

    async def due(self, low: float, high: float) -> list[str]:
        """Every indexed appointment id starting in ``[low, high]``, earliest first."""
        ...

    async def log_day(self, day: str, ident: str, start: float) -> None:
        """List ``ident`` under its business-local ``day`` (``2026-03-03``), whatever becomes of it."""
        ...

    async def unlog_day(self, day: str, ident: str) -> None:
        """Undo :meth:`log_day` (an appointment moved to another day)."""
        ...

    async def day_log(self, day: str) -> list[str]:
        """Every appointment id logged under ``day``, earliest start first."""
        ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class RedisAppointmentStore:
    """:class:`AppointmentStore` on Redis; see the module docstring for the keys."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        self._claim = backend.client.register_script(_CLAIM)
        self._release = backend.client.register_script(_RELEASE)

    async def claim(self, calendar: str, ident: str, start: float, end: float, resources: Sequence[str]) -> str | None:
        for resource in resources:
            hold_member(ident, resource, end)  # validates both names
        if not resources:
            return None
        chosen = await self.backend.call(self._claim(
            keys=[calendar_key(calendar)], args=[ident, repr(start), repr(end), ident + SEP, *resources]))
        return str(chosen) if chosen else None

    async def holds(self, calendar: str) -> list[Hold]:
        pairs: list[tuple[str, float]] = await self.backend.call(
            self.backend.client.zrange(calendar_key(calendar), 0, -1, withscores=True))
        return [hold_from(member, score) for member, score in pairs]

    async def release(self, calendar: str, ident: str) -> None:
        await self.backend.call(self._release(keys=[calendar_key(calendar)], args=[ident + SEP]))

    async def put(self, ident: str, record: str, *, ttl: float) -> None:
        await self.backend.call(self.backend.client.set(record_key(ident), record, px=max(1, int(ttl * 1000))))

    async def get(self, ident: str) -> str | None:
        value: str | None = await self.backend.call(self.backend.client.get(record_key(ident)))
        return value

    async def get_many(self, idents: Sequence[str]) -> list[str | None]:
        if not idents:
            return []
        # Single-key GETs in one non-transactional pipeline: the records sit
        # on many cluster slots, and the cluster client sends each to its node.
        pipe = self.backend.client.pipeline(transaction=False)
        for ident in idents:
            pipe.get(record_key(ident))
        values: list[str | None] = await self.backend.call(pipe.execute())
        return values

    async def delete(self, ident: str) -> None:
        await self.backend.call(self.backend.client.delete(record_key(ident)))

    async def index(self, owner: str, ident: str, start: float) -> None:
        client = self.backend.client
        await self.backend.call(client.zadd(owner_key(owner), {ident: start}))
        await self.backend.call(client.zadd(due_key(due_buckets(start, start)[0]), {ident: start}))

    async def unindex(self, owner: str, ident: str, start: float) -> None:
        client = self.backend.client
        await self.backend.call(client.zrem(owner_key(owner), ident))
        await self.backend.call(client.zrem(due_key(due_buckets(start, start)[0]), ident))

    async def owned(self, owner: str, low: float, high: float) -> list[str]:
        members: list[str] = await self.backend.call(self.backend.client.zrangebyscore(owner_key(owner), low, high))
        return members

    async def due(self, low: float, high: float) -> list[str]:
        # One single-key read per minute bucket, pipelined (see get_many).
        pipe = self.backend.client.pipeline(transaction=False)
        for bucket in due_buckets(low, high):
            pipe.zrangebyscore(due_key(bucket), low, high, withscores=True)
        found: list[list[tuple[str, float]]] = await self.backend.call(pipe.execute())
        return [ident for ident, _ in sorted((pair for pairs in found for pair in pairs), key=lambda p: (p[1], p[0]))]

    async def log_day(self, day: str, ident: str, start: float) -> None:
        pipe = self.backend.client.pipeline(transaction=False)
        pipe.zadd(day_key(day), {ident: start})
        pipe.expire(day_key(day), DAY_LOG_SECONDS)
        await self.backend.call(pipe.execute())

    async def unlog_day(self, day: str, ident: str) -> None:
        await self.backend.call(self.backend.client.zrem(day_key(day), ident))

    async def day_log(self, day: str) -> list[str]:
        members: list[str] = await self.backend.call(self.backend.client.zrange(day_key(day), 0, -1))
        return members

    async def ping(self) -> None:
        await self.backend.ping()

    async def close(self) -> None:
        return None  # the backend is shared; Stores closes it once


class MemoryAppointmentStore:
    """:class:`AppointmentStore` in memory (development and tests)."""

    def __init__(self) -> None:
        self._records = MemoryValues()
        self._calendars: dict[str, dict[str, float]] = {}
        self._owners: dict[str, dict[str, float]] = {}
        self._due: dict[int, dict[str, float]] = {}
        self._days: dict[str, dict[str, float]] = {}

    async def claim(self, calendar: str, ident: str, start: float, end: float, resources: Sequence[str]) -> str | None:
        for resource in resources:
            hold_member(ident, resource, end)
        held = self._calendars.setdefault(calendar, {})
        busy = {h.resource for h in (hold_from(m, s) for m, s in held.items())
                if h.ident != ident and h.start < end and start < h.end}
        chosen = next((r for r in resources if r not in busy), None)
        if chosen is None:
            return None
        for member in [m for m in held if m.startswith(ident + SEP)]:
            del held[member]
        held[hold_member(ident, chosen, end)] = start
        return chosen

    async def holds(self, calendar: str) -> list[Hold]:
        held = self._calendars.get(calendar, {})
        return sorted((hold_from(m, s) for m, s in held.items()), key=lambda h: (h.start, h.ident))

    async def release(self, calendar: str, ident: str) -> None:
        held = self._calendars.get(calendar, {})
        for member in [m for m in held if m.startswith(ident + SEP)]:
            del held[member]

    async def put(self, ident: str, record: str, *, ttl: float) -> None:
        self._records.set(ident, record, ttl)

    async def get(self, ident: str) -> str | None:
        return self._records.get(ident)

    async def get_many(self, idents: Sequence[str]) -> list[str | None]:
        return [self._records.get(ident) for ident in idents]

    async def delete(self, ident: str) -> None:
        self._records.delete(ident)

    async def index(self, owner: str, ident: str, start: float) -> None:
        self._owners.setdefault(owner, {})[ident] = start
        self._due.setdefault(due_buckets(start, start)[0], {})[ident] = start

    async def unindex(self, owner: str, ident: str, start: float) -> None:
        self._owners.get(owner, {}).pop(ident, None)
        self._due.get(due_buckets(start, start)[0], {}).pop(ident, None)

    async def owned(self, owner: str, low: float, high: float) -> list[str]:
        return _in_range(self._owners.get(owner, {}), low, high)

    async def due(self, low: float, high: float) -> list[str]:
        buckets = due_buckets(low, high)
        # A reminder run's window spans days of minute buckets: walk the few that hold
        # something when they are fewer than the range (the same answer either way).
        if len(buckets) > len(self._due):
            found = {i: s for bucket, entries in self._due.items() if bucket in buckets for i, s in entries.items()}
        else:
            found = {i: s for bucket in buckets for i, s in self._due.get(bucket, {}).items()}
        return _in_range(found, low, high)

    async def log_day(self, day: str, ident: str, start: float) -> None:
        self._days.setdefault(day, {})[ident] = start

    async def unlog_day(self, day: str, ident: str) -> None:
        self._days.get(day, {}).pop(ident, None)

    async def day_log(self, day: str) -> list[str]:
        return _in_range(self._days.get(day, {}), float("-inf"), float("inf"))

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _in_range(index: dict[str, float], low: float, high: float) -> list[str]:
    return [ident for start, ident in sorted((s, i) for i, s in index.items() if low <= s <= high)]

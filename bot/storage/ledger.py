"""The outbound ledger store: send records, delivery statuses, campaign tallies.

What :mod:`bot.outbound` keeps about messages it sends: the send ledger's
idempotency records (:class:`~bot.outbound.ledger.SendLedger`), the
forward-only delivery status of each message (:meth:`LedgerStore.advance`),
campaign outcome counts (:meth:`LedgerStore.tally`) and do-not-send marks.
Two implementations, memory and Redis, held to
``tests/bot/storage/test_ledger_contract.py``.

Every call touches one key, or (``tally``) two keys beside one hash tag, so
each stays on one Redis Cluster slot.

Example::

    ledger = RedisLedgerStore(backend)
    await ledger.set("out:{ref}", record, ttl=3600, only_if_absent=True)
    await ledger.advance("status:{SM1}", "delivered", 4, ttl=3600)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Protocol

from bot.storage.backend import MemoryRecords, Records, RedisBackend, RedisRecords

# KEYS: record. ARGV: state, rank, ttl_ms, data.
# The record is JSON (as in the memory store, so GET reads it on both):
# {"seen": [states ever reported], "state", "rank", "data"}.
_ADVANCE = """
local raw = redis.call('GET', KEYS[1])
local rec = {seen = {}}
if raw then rec = cjson.decode(raw) end
local first = 1
for _, s in ipairs(rec.seen) do
  if s == ARGV[1] then first = 0 end
end
if first == 1 then table.insert(rec.seen, ARGV[1]) end
local applied = 0
if rec.rank == nil or tonumber(ARGV[2]) > tonumber(rec.rank) then
  rec.state = ARGV[1]
  rec.rank = tonumber(ARGV[2])
  rec.data = ARGV[4]
  applied = 1
end
redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ARGV[3])
return {applied, first, rec.state, rec.data}
"""

# KEYS: members (hash member -> outcome), counts (hash outcome -> n).
# ARGV: member, outcome, ttl_ms ('' = none).
_TALLY = """
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
if ARGV[3] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Advance:
    """What :meth:`LedgerStore.advance` found and did.

    ``applied``: the record moved to the new state. ``first_seen``: this state
    was never reported for the key before (count it once). ``state`` and
    ``data`` are the record's current values after the call.
    """

    applied: bool
    first_seen: bool
    state: str
    data: str = ""


def tally_keys(key: str) -> tuple[str, str]:
    """The two keys of a tally: ``<key>:members`` and ``<key>:counts`` (one hash tag)."""
    return f"{key}:members", f"{key}:counts"


class LedgerStore(Records, Protocol):
    """Records plus the two atomic updates the outbound side needs."""

    async def advance(self, key: str, state: str, rank: int, *, ttl: float, data: str = "") -> Advance:
        """Move a forward-only state record, atomically (delivery statuses).

        The record at ``key`` takes ``state`` (and ``data``) only when ``rank``
        is above its current rank, so late or repeated reports never move it
        back; every state reported is remembered, so ``first_seen`` is True
        once per (key, state). The TTL is renewed on every call. The record
        is JSON that :meth:`get` reads: ``{"state", "rank", "data", "seen"}``.

        Example::

            await ledger.advance("status:{SM1}", "delivered", 4, ttl=3600)  # applied
            await ledger.advance("status:{SM1}", "sent", 3, ttl=3600)       # not applied, first_seen
        """
        ...

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool:
        """Count ``member``'s ``outcome`` under ``key`` once, atomically (campaign summaries).

        Returns False, counting nothing, when ``member`` already has an outcome.
        ``key`` must carry a hash tag (``campaign:{spring}``): the member set
        and the counts are two keys beside it, on one cluster slot.
        """
        ...

    async def tallies(self, key: str) -> dict[str, int]:
        """The counts per outcome under ``key`` (empty when nothing was tallied)."""
        ...


class RedisLedgerStore(RedisRecords):
    """:class:`LedgerStore` on Redis (one script per atomic update)."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__(backend)
        self._advance = backend.client.register_script(_ADVANCE)
        self._tally = backend.client.register_script(_TALLY)

    async def advance(self, key: str, state: str, rank: int, *, ttl: float, data: str = "") -> Advance:
        reply = await self.backend.call(self._advance(keys=[key], args=[state, rank, max(1, int(ttl * 1000)), data]))
        return Advance(applied=bool(reply[0]), first_seen=bool(reply[1]), state=reply[2], data=reply[3] or "")

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool:
        ms = "" if ttl is None else max(1, int(ttl * 1000))
        return bool(await self.backend.call(self._tally(keys=list(tally_keys(key)), args=[member, outcome, ms])))

    async def tallies(self, key: str) -> dict[str, int]:
        raw: dict[str, str] = await self.backend.call(self.backend.client.hgetall(tally_keys(key)[1]))
        return {outcome: int(n) for outcome, n in raw.items()}


class MemoryLedgerStore(MemoryRecords):
    """:class:`LedgerStore` in memory; records and tallies are JSON among the values."""

    async def advance(self, key: str, state: str, rank: int, *, ttl: float, data: str = "") -> Advance:
        raw = self.values.get(key)
        record = json.loads(raw) if raw is not None else {}
        record["seen"] = list(record.get("seen") or [])
        first_seen = state not in record["seen"]
        if first_seen:
            record["seen"].append(state)
        applied = "rank" not in record or rank > record["rank"]
        if applied:
            record.update(state=state, rank=rank, data=data)
        self.values.set(key, json.dumps(record), ttl)
        return Advance(applied=applied, first_seen=first_seen, state=record["state"], data=record["data"])

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool:
        members_key, counts_key = tally_keys(key)
        members: dict[str, str] = json.loads(self.values.get(members_key) or "{}")
        if member in members:
            return False
        members[member] = outcome
        counts: dict[str, int] = json.loads(self.values.get(counts_key) or "{}")
        counts[outcome] = counts.get(outcome, 0) + 1
        self.values.set(members_key, json.dumps(members), ttl)
        self.values.set(counts_key, json.dumps(counts), ttl)
        return True

    async def tallies(self, key: str) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self.values.get(tally_keys(key)[1]) or "{}")
        return counts

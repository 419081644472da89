"""Redis :class:`~bot.storage.base.ConversationStore` (redis-py asyncio).

Each turn costs two round trips: one Lua script to begin (dedupe check,
enqueue, lease, load state and opt-out) and one to commit (state, answer,
seen record, opt-out, release). Scripts run atomically, so two app instances sharing one
Redis can never both run the same ``MessageSid`` or interleave a conversation.

All keys of a conversation share its hash tag, so the scripts stay on one
Redis Cluster slot. No ``KEYS`` command anywhere.

Example::

    store = RedisStore.from_url("redis://127.0.0.1:6379/0")
    await store.ping()
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from bot.errors import StoreError
from bot.storage.base import (
    DIGEST_CHARS,
    SEEN_KEPT,
    Advance,
    ConversationKey,
    ConversationState,
    Interval,
    TurnStart,
    TurnStatus,
    interval_from,
    interval_member,
    message_digest,
)

# KEYS: msg, queue, leases, state, optout, seen. ARGV: token, lease_ms, digest.
# The queue is a FIFO list of tokens; the head runs. Leases live in a hash of
# token -> deadline (server time, ms) so a crashed holder is skipped. ``seen``
# is the conversation's last message digests, fixed width, newest last.
_BEGIN = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lease = tonumber(ARGV[2])
local m = redis.call('GET', KEYS[1])
if m then
  if string.sub(m, 1, 2) == 'A:' then return {'duplicate', string.sub(m, 3)} end
  if m ~= 'P:' .. ARGV[1] then return {'in_flight'} end
else
  local seen = redis.call('GET', KEYS[6])
  if seen then
    local at = string.find(seen, ARGV[3], 1, true)
    while at do
      if (at - 1) % string.len(ARGV[3]) == 0 then return {'duplicate', ''} end
      at = string.find(seen, ARGV[3], at + 1, true)
    end
  end
end
redis.call('SET', KEYS[1], 'P:' .. ARGV[1], 'PX', lease)
if redis.call('HSETNX', KEYS[3], ARGV[1], now_ms + lease) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[3], ARGV[1], now_ms + lease)
end
redis.call('PEXPIRE', KEYS[2], lease * 4)
redis.call('PEXPIRE', KEYS[3], lease * 4)
while true do
  local head = redis.call('LINDEX', KEYS[2], 0)
  if not head then
    redis.call('RPUSH', KEYS[2], ARGV[1])
    head = ARGV[1]
  end
  if head == ARGV[1] then
    return {'acquired', redis.call('GET', KEYS[4]) or '', redis.call('EXISTS', KEYS[5])}
  end
  local deadline = tonumber(redis.call('HGET', KEYS[3], head) or '0')
  if deadline > now_ms then return {'queued'} end
  redis.call('LPOP', KEYS[2])
  redis.call('HDEL', KEYS[3], head)
end
"""

# KEYS: msg, queue, leases, state, optout, seen.
# ARGV: token, answer, answer_ttl_s, state ('' = unchanged), state_ttl_s,
#       optout ('1' set, '0' clear, '' unchanged), digest, seen_ttl_s,
#       seen_max_chars.
_COMMIT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if redis.call('LINDEX', KEYS[2], 0) ~= ARGV[1] then return 0 end
local deadline = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
redis.call('LPOP', KEYS[2])
redis.call('HDEL', KEYS[3], ARGV[1])
if deadline <= now_ms then return 0 end
if ARGV[4] ~= '' then redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[5]) end
if ARGV[6] == '1' then redis.call('SET', KEYS[5], '1')
elseif ARGV[6] == '0' then redis.call('DEL', KEYS[5]) end
redis.call('SET', KEYS[1], 'A:' .. ARGV[2], 'EX', ARGV[3])
local seen = (redis.call('GET', KEYS[6]) or '') .. ARGV[7]
local keep = tonumber(ARGV[9])
if string.len(seen) > keep then seen = string.sub(seen, -keep) end
redis.call('SET', KEYS[6], seen, 'EX', ARGV[8])
return 1
"""

# KEYS: msg, queue, leases. ARGV: token.
_ABORT = """
if redis.call('GET', KEYS[1]) == 'P:' .. ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('LREM', KEYS[2], 1, ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


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


# KEYS: pace. ARGV: interval_s. Server time, so every process shares one clock.
# The key holds when the next free slot starts (epoch seconds, as text).
_NEXT_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local slot = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local after = slot + tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.6f', after), 'PX', math.ceil((after - now) * 1000) + 1000)
return string.format('%.6f', slot - now)
"""


# KEYS: index. ARGV: ident, start, end, member. Members are '<ident>|<end>'
# scored by start; an interval overlaps when it starts before our end and
# ends after our start. The ident's own earlier interval is replaced.
_INTERVAL_CLAIM = """
local start, finish = tonumber(ARGV[2]), tonumber(ARGV[3])
local mine = {}
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
for _, m in ipairs(members) do
  local cut = string.find(m, '|[^|]*$')
  local ident = string.sub(m, 1, cut - 1)
  if ident == ARGV[1] then table.insert(mine, m)
  elseif tonumber(string.sub(m, cut + 1)) > start then return 0 end
end
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], '(' .. ARGV[3], '+inf', 'BYSCORE')) do
  if string.sub(m, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. '|' then table.insert(mine, m) end
end
for _, m in ipairs(mine) do redis.call('ZREM', KEYS[1], m) end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
return 1
"""

# KEYS: index. ARGV: ident.
_INTERVAL_REMOVE = """
local prefix = ARGV[1] .. '|'
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if string.sub(m, 1, string.len(prefix)) == prefix then redis.call('ZREM', KEYS[1], m) end
end
return 1
"""


def _turn_keys(key: ConversationKey, digest: str) -> list[str]:
    return [
        key.part(f"msg:{digest}"),
        key.part("queue"),
        key.part("leases"),
        key.part("state"),
        key.opt_out_key,
        key.part("seen"),
    ]


class RedisStore:
    """The production store. Takes an injected client or :meth:`from_url`."""

    def __init__(self, client: Redis, *, timeout: float = 5.0) -> None:
        self._redis = client
        self.timeout = timeout
        self._begin = client.register_script(_BEGIN)
        self._commit = client.register_script(_COMMIT)
        self._abort = client.register_script(_ABORT)
        self._advance = client.register_script(_ADVANCE)
        self._tally = client.register_script(_TALLY)
        self._next_slot = client.register_script(_NEXT_SLOT)
        self._interval_claim = client.register_script(_INTERVAL_CLAIM)
        self._interval_remove = client.register_script(_INTERVAL_REMOVE)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        # decode_responses: every value we store is UTF-8 text (JSON, TwiML).
        # No socket_timeout: redis-py then wraps every send in asyncio.wait_for,
        # which (Python 3.11) runs it as a task of its own -- per command. One
        # asyncio.timeout around each call (``_call``) bounds send and read instead.
        kwargs.setdefault("socket_connect_timeout", 2.0)
        timeout = float(kwargs.pop("timeout", 5.0))
        return cls(Redis.from_url(url, decode_responses=True, **kwargs), timeout=timeout)

    @property
    def client(self) -> Redis:
        """The underlying client, for features that need more than the protocol."""
        return self._redis

    async def _call(self, coro: Any) -> Any:
        try:
            async with asyncio.timeout(self.timeout):
                return await coro
        except TimeoutError as exc:
            raise StoreError(f"redis: no answer within {self.timeout:g}s") from exc
        except RedisError as exc:
            raise StoreError(f"redis: {exc.__class__.__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"redis unreachable: {exc}") from exc

    # -- primitives ---------------------------------------------------------
    async def get(self, key: str) -> str | None:
        value: str | None = await self._call(self._redis.get(key))
        return value

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        px = None if ttl is None else max(1, int(ttl * 1000))
        result = await self._call(self._redis.set(key, value, px=px, nx=only_if_absent))
        return bool(result)

    async def delete(self, key: str) -> None:
        await self._call(self._redis.delete(key))

    async def ttl(self, key: str) -> float | None:
        ms: int = await self._call(self._redis.pttl(key))
        return None if ms < 0 else ms / 1000

    async def index_add(self, key: str, member: str, score: float) -> None:
        await self._call(self._redis.zadd(key, {member: score}))

    async def index_remove(self, key: str, member: str) -> None:
        await self._call(self._redis.zrem(key, member))

    async def index_range(self, key: str, low: float, high: float) -> list[str]:
        members: list[str] = await self._call(self._redis.zrangebyscore(key, low, high))
        return members

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        # A pipeline, not MGET: the keys may sit on different cluster slots.
        pipe = self._redis.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        values: list[str | None] = await self._call(pipe.execute())
        return values

    async def interval_claim(self, key: str, ident: str, start: float, end: float) -> bool:
        member = interval_member(ident, end)
        ok = await self._call(self._interval_claim(keys=[key], args=[ident, repr(start), repr(end), member]))
        return bool(ok)

    async def interval_range(self, key: str, low: float, high: float) -> list[Interval]:
        pairs: list[tuple[str, float]] = await self._call(self._redis.zrangebyscore(key, low, high, withscores=True))
        return [interval_from(member, score) for member, score in pairs]

    async def interval_remove(self, key: str, ident: str) -> None:
        await self._call(self._interval_remove(keys=[key], args=[ident]))

    async def advance(self, key: str, state: str, rank: int, *, ttl: float, data: str = "") -> Advance:
        reply = await self._call(self._advance(keys=[key], args=[state, rank, max(1, int(ttl * 1000)), data]))
        return Advance(applied=bool(reply[0]), first_seen=bool(reply[1]), state=reply[2], data=reply[3] or "")

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool:
        ms = "" if ttl is None else max(1, int(ttl * 1000))
        counted = await self._call(self._tally(keys=[f"{key}:members", f"{key}:counts"], args=[member, outcome, ms]))
        return bool(counted)

    async def tallies(self, key: str) -> dict[str, int]:
        raw: dict[str, str] = await self._call(self._redis.hgetall(f"{key}:counts"))
        return {outcome: int(n) for outcome, n in raw.items()}

    async def next_slot(self, key: str, interval: float) -> float:
        wait = await self._call(self._next_slot(keys=[key], args=[repr(interval)]))
        return float(wait)

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()

    # -- turns --------------------------------------------------------------
    async def begin_turn(
        self, key: ConversationKey, message_sid: str, token: str, *, lease_seconds: float
    ) -> TurnStart:
        digest = message_digest(message_sid)
        reply = await self._call(
            self._begin(keys=_turn_keys(key, digest), args=[token, int(lease_seconds * 1000), digest])
        )
        kind = reply[0]
        if kind == "acquired":
            raw, opted_out = reply[1], reply[2]
            state = ConversationState.decode(raw, key) if raw else None
            return TurnStart(TurnStatus.ACQUIRED, state=state, opted_out=bool(opted_out))
        if kind == "duplicate":
            return TurnStart(TurnStatus.DUPLICATE, answer=reply[1])
        return TurnStart(TurnStatus.IN_FLIGHT if kind == "in_flight" else TurnStatus.QUEUED)

    async def commit_turn(
        self,
        key: ConversationKey,
        message_sid: str,
        token: str,
        *,
        state: ConversationState | None,
        answer: str,
        state_ttl: int,
        answer_ttl: int,
        opted_out: bool | None = None,
        seen_ttl: int | None = None,
    ) -> bool:
        flag = "" if opted_out is None else ("1" if opted_out else "0")
        digest = message_digest(message_sid)
        ok = await self._call(
            self._commit(
                keys=_turn_keys(key, digest),
                args=[
                    token,
                    answer,
                    answer_ttl,
                    "" if state is None else state.encode(),
                    state_ttl,
                    flag,
                    digest,
                    max(answer_ttl, seen_ttl or answer_ttl),
                    SEEN_KEPT * DIGEST_CHARS,
                ],
            )
        )
        return bool(ok)

    async def abort_turn(self, key: ConversationKey, message_sid: str, token: str) -> None:
        keys = _turn_keys(key, message_digest(message_sid))[:3]
        await self._call(self._abort(keys=keys, args=[token]))

    # -- conversation data ---------------------------------------------------
    async def load(self, key: ConversationKey) -> ConversationState | None:
        raw = await self.get(key.part("state"))
        return None if raw is None else ConversationState.decode(raw, key)

    async def is_opted_out(self, key: ConversationKey) -> bool:
        return bool(await self._call(self._redis.exists(key.opt_out_key)))

    async def set_opted_out(self, key: ConversationKey, opted_out: bool) -> None:
        if opted_out:
            await self._call(self._redis.set(key.opt_out_key, "1"))
        else:
            await self._call(self._redis.delete(key.opt_out_key))

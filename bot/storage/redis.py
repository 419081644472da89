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

from typing import Any

from bot.storage.backend import RedisBackend
from bot.storage.base import (
    DIGEST_CHARS,
    SEEN_KEPT,
    ConversationKey,
    ConversationState,
    TurnStart,
    TurnStatus,
    message_digest,
)
from bot.storage.connect import connect

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
  if string.sub(m, 1, 2) == 'A:' then return {'duplicate', string.sub(m, 3), redis.call('EXISTS', KEYS[5])} end
  if m ~= 'P:' .. ARGV[1] then return {'in_flight'} end
else
  local seen = redis.call('GET', KEYS[6])
  if seen then
    local at = string.find(seen, ARGV[3], 1, true)
    while at do
      if (at - 1) % string.len(ARGV[3]) == 0 then return {'duplicate', '', redis.call('EXISTS', KEYS[5])} end
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
    """The production conversation store. Takes a :class:`RedisBackend` or :meth:`from_url`."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend
        client = backend.client
        self._begin = client.register_script(_BEGIN)
        self._commit = client.register_script(_COMMIT)
        self._abort = client.register_script(_ABORT)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        """A store on ``url``: ``redis://``, ``rediss://``, ``redis+cluster://`` or ``redis+sentinel://``."""
        return cls(connect(url, **kwargs))

    @property
    def client(self) -> Any:
        """The underlying client, for features that need more than the protocol."""
        return self.backend.client

    @property
    def timeout(self) -> float:
        return self.backend.timeout

    async def _call(self, coro: Any) -> Any:
        return await self.backend.call(coro)

    async def ping(self) -> None:
        await self.backend.ping()

    async def close(self) -> None:
        await self.backend.close()

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
            # The opt-out flag as it is now: a cached answer may predate a STOP.
            return TurnStart(TurnStatus.DUPLICATE, answer=reply[1], opted_out=bool(reply[2]))
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
        raw = await self._call(self.client.get(key.part("state")))
        return None if raw is None else ConversationState.decode(raw, key)

    async def is_opted_out(self, key: ConversationKey) -> bool:
        return bool(await self._call(self.client.exists(key.opt_out_key)))

    async def set_opted_out(self, key: ConversationKey, opted_out: bool) -> None:
        if opted_out:
            await self._call(self.client.set(key.opt_out_key, "1"))
        else:
            await self._call(self.client.delete(key.opt_out_key))

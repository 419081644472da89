"""The job store: what background jobs keep beside the queue.

Cursors (how far the reminders ran), held send slots and the shared sending
pace (:meth:`JobStore.next_slot`) of campaigns. The queue itself is arq's
(:mod:`bot.outbound.outbox`); see docs/scaling.md for why it lives on
``QUEUE_REDIS_URL`` when the bot runs on a Redis Cluster. Two
implementations, memory and Redis, held to
``tests/bot/storage/test_jobs_contract.py``.

Example::

    jobs = RedisJobStore(backend)
    wait = await jobs.next_slot("pace:{+15005550006}", 1.0)   # 0.0: go now
    await jobs.set("reminders:cursor", "1767225600.0")
"""

from __future__ import annotations

import time
from typing import Protocol

from bot.storage.backend import MemoryRecords, Records, RedisBackend, RedisRecords

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


class JobStore(Records, Protocol):
    """Records plus a shared pace."""

    async def next_slot(self, key: str, interval: float) -> float:
        """Reserve the next free slot on a shared pace; seconds from now until it starts.

        Slots are ``interval`` seconds apart per ``key`` (one sending number),
        whichever process asks, so many workers together keep one rate.
        Returns 0 when the pace is idle: the slot is now.

        Example::

            await jobs.next_slot("pace:{+15005550006}", 0.5)   # 0.0, then 0.5, 1.0 ...
        """
        ...


class RedisJobStore(RedisRecords):
    """:class:`JobStore` on Redis; the pace runs on the server's clock."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__(backend)
        self._next_slot = backend.client.register_script(_NEXT_SLOT)

    async def next_slot(self, key: str, interval: float) -> float:
        return float(await self.backend.call(self._next_slot(keys=[key], args=[repr(interval)])))


class MemoryJobStore(MemoryRecords):
    """:class:`JobStore` in memory (one process)."""

    async def next_slot(self, key: str, interval: float) -> float:
        now = time.time()
        slot = max(now, float(self.values.get(key) or 0.0))
        self.values.set(key, repr(slot + interval), slot + interval - now + 1.0)
        return slot - now

"""What every store shares: a Redis call with one bound, and expiring values in memory.

:class:`RedisBackend` wraps one redis-py asyncio client (a plain
``Redis``, a ``RedisCluster`` or a Sentinel-managed master, see
:mod:`bot.storage.connect`): the four Redis stores of a process share it,
and every call goes through :meth:`RedisBackend.call`, which turns timeouts
and Redis errors into :class:`~bot.errors.StoreError`.

:class:`MemoryValues` is the dict-with-expiries the memory stores keep their
plain values in, expiring on real monotonic time like Redis does.

:class:`Records` is the small key-value part the ledger and job stores share
(get, set, delete, ttl); :class:`RedisRecords` and :class:`MemoryRecords`
implement it once for both.

Example::

    backend = RedisBackend(Redis.from_url(url, decode_responses=True))
    await backend.call(backend.client.ping())
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

from redis.exceptions import RedisError

from bot.errors import StoreError

#: Seconds one Redis call may take before it fails as a :class:`StoreError`.
DEFAULT_TIMEOUT = 5.0


class RedisBackend:
    """One client and the bound on every call; shared by a process's Redis stores."""

    def __init__(self, client: Any, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        # ``Any``: redis.asyncio.Redis and RedisCluster share the commands we use
        # but no common base class.
        self.client = client
        self.timeout = timeout

    async def call(self, coro: Any) -> Any:
        # No socket_timeout on the client: redis-py then wraps every send in
        # asyncio.wait_for, a task of its own per command (Python 3.11). One
        # asyncio.timeout around each call bounds send and read instead.
        try:
            async with asyncio.timeout(self.timeout):
                return await coro
        except TimeoutError as exc:
            raise StoreError(f"redis: no answer within {self.timeout:g}s") from exc
        except RedisError as exc:
            raise StoreError(f"redis: {exc.__class__.__name__}: {exc}") from exc
        except OSError as exc:
            raise StoreError(f"redis unreachable: {exc}") from exc

    async def ping(self) -> None:
        await self.call(self.client.ping())

    async def close(self) -> None:
        await self.client.aclose()


class MemoryValues:
    """Strings with optional expiry; what a memory store keeps its plain values in."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[str, float | None]] = {}

    @staticmethod
    def now() -> float:
        # Real monotonic time, like Redis' own expiry clock: the injected
        # (possibly frozen) business clock does not age storage.
        return time.monotonic()

    def get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self.now():
            del self._values[key]
            return None
        return value

    def set(self, key: str, value: str, ttl: float | None) -> None:
        self._values[key] = (value, None if ttl is None else self.now() + ttl)

    def delete(self, key: str) -> None:
        self._values.pop(key, None)

    def ttl(self, key: str) -> float | None:
        if self.get(key) is None:
            return None
        expires = self._values[key][1]
        return None if expires is None else expires - self.now()


class Records(Protocol):
    """Plain string records with an optional TTL (the ledger's and the jobs' part)."""

    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        """Set a value; with ``only_if_absent`` return False (changing nothing) if it existed."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left to live; None when the key is missing or never expires."""
        ...

    async def ping(self) -> None:
        """Raise :class:`~bot.errors.StoreError` when the backend is unreachable."""
        ...

    async def close(self) -> None: ...


class RedisRecords:
    """:class:`Records` on Redis: one single-key command per call."""

    def __init__(self, backend: RedisBackend) -> None:
        self.backend = backend

    async def get(self, key: str) -> str | None:
        value: str | None = await self.backend.call(self.backend.client.get(key))
        return value

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        px = None if ttl is None else max(1, int(ttl * 1000))
        return bool(await self.backend.call(self.backend.client.set(key, value, px=px, nx=only_if_absent)))

    async def delete(self, key: str) -> None:
        await self.backend.call(self.backend.client.delete(key))

    async def ttl(self, key: str) -> float | None:
        ms: int = await self.backend.call(self.backend.client.pttl(key))
        return None if ms < 0 else ms / 1000

    async def ping(self) -> None:
        await self.backend.ping()

    async def close(self) -> None:
        # The backend is shared; :class:`~bot.storage.stores.Stores` closes it once.
        return None


class MemoryRecords:
    """:class:`Records` in memory (development and tests)."""

    def __init__(self) -> None:
        self.values = MemoryValues()

    async def get(self, key: str) -> str | None:
        return self.values.get(key)

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        if only_if_absent and self.values.get(key) is not None:
            return False
        self.values.set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self.values.delete(key)

    async def ttl(self, key: str) -> float | None:
        return self.values.ttl(key)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

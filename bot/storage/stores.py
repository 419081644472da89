"""The four stores of a process, on one backend: conversations, appointments, ledger, jobs.

Each part of the bot receives the narrow store it uses (the engine the
conversation store, the appointment book the appointment store ...). They
are built together on one backend, so a process holds one Redis client (or
one set of in-memory stores) whichever way it was started.

Example::

    stores = Stores.from_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7000")
    stores = Stores.memory()
    stores = Stores.beside(runtime_store)   # the siblings of an injected conversation store
    await stores.close()
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

from bot.storage.appointments import AppointmentStore, MemoryAppointmentStore, RedisAppointmentStore
from bot.storage.backend import RedisBackend
from bot.storage.base import ConversationStore
from bot.storage.connect import connect
from bot.storage.jobs import JobStore, MemoryJobStore, RedisJobStore
from bot.storage.ledger import LedgerStore, MemoryLedgerStore, RedisLedgerStore
from bot.storage.memory import MemoryStore
from bot.storage.redis import RedisStore

# The siblings built for a conversation store, so every ``beside`` of one
# store sees the same appointments (memory) and the same client (Redis).
_SIBLINGS: weakref.WeakKeyDictionary[Any, Stores] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Stores:
    """One backend's stores."""

    conversations: ConversationStore
    appointments: AppointmentStore
    ledger: LedgerStore
    jobs: JobStore

    @classmethod
    def memory(cls) -> Stores:
        """Fresh in-memory stores (development and tests: one process, nothing survives)."""
        return cls.beside(MemoryStore())

    @classmethod
    def redis(cls, backend: RedisBackend) -> Stores:
        """Redis stores sharing ``backend``'s client."""
        return cls.beside(RedisStore(backend))

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Stores:
        """Redis stores on ``url`` (see :mod:`bot.storage.connect` for the URL forms)."""
        return cls.redis(connect(url, **kwargs))

    @classmethod
    def beside(cls, conversations: ConversationStore) -> Stores:
        """The stores that go with ``conversations`` (same backend; the same ones every call).

        A Redis conversation store's siblings share its client; a memory
        one's are memory stores. Any other store (a test double) gets
        memory siblings.
        """
        found = _SIBLINGS.get(conversations)
        if found is not None:
            return found
        if isinstance(conversations, RedisStore):
            backend = conversations.backend
            stores = cls(conversations, RedisAppointmentStore(backend), RedisLedgerStore(backend),
                         RedisJobStore(backend))
        else:
            stores = cls(conversations, MemoryAppointmentStore(), MemoryLedgerStore(), MemoryJobStore())
        _SIBLINGS[conversations] = stores
        return stores

    @staticmethod
    def register(conversations: ConversationStore, stores: Stores) -> None:
        """Make ``stores`` what :meth:`beside` answers for ``conversations`` (a proxy's siblings)."""
        _SIBLINGS[conversations] = stores

    async def ping(self) -> None:
        """Raise :class:`~bot.errors.StoreError` when the backend is unreachable."""
        await self.conversations.ping()

    async def close(self) -> None:
        """Close the backend once (the siblings share it)."""
        await self.conversations.close()

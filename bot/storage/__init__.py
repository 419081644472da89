"""Storage: four small protocols, each with a memory and a Redis implementation.

- :class:`ConversationStore`: turns (exactly-once, in order), state, opt-outs;
- :class:`AppointmentStore`: appointment records and resource calendars;
- :class:`LedgerStore`: the outbound ledger (send records, statuses, tallies);
- :class:`JobStore`: what background jobs keep (cursors, paces).

:class:`Stores` builds the four on one backend.

Example::

    stores = Stores.from_url(settings.redis_url) if settings.redis_url else Stores.memory()
"""

from __future__ import annotations

from bot.storage.appointments import AppointmentStore, Hold, MemoryAppointmentStore, RedisAppointmentStore
from bot.storage.backend import MemoryValues, Records, RedisBackend
from bot.storage.base import (
    ConversationKey,
    ConversationState,
    ConversationStore,
    HistoryEntry,
    TurnStart,
    TurnStatus,
)
from bot.storage.connect import connect
from bot.storage.jobs import JobStore, MemoryJobStore, RedisJobStore
from bot.storage.ledger import Advance, LedgerStore, MemoryLedgerStore, RedisLedgerStore
from bot.storage.memory import MemoryStore
from bot.storage.redis import RedisStore
from bot.storage.stores import Stores

__all__ = [
    "Advance",
    "AppointmentStore",
    "ConversationKey",
    "ConversationState",
    "ConversationStore",
    "HistoryEntry",
    "Hold",
    "JobStore",
    "LedgerStore",
    "MemoryAppointmentStore",
    "MemoryJobStore",
    "MemoryLedgerStore",
    "MemoryStore",
    "MemoryValues",
    "Records",
    "RedisAppointmentStore",
    "RedisBackend",
    "RedisJobStore",
    "RedisLedgerStore",
    "RedisStore",
    "Stores",
    "TurnStart",
    "TurnStatus",
    "connect",
]

"""Conversation storage: one protocol, a memory and a Redis implementation.

Example::

    store = build_store(settings)  # RedisStore when REDIS_URL is set
"""

from __future__ import annotations

from bot.storage.base import (
    Advance,
    ConversationKey,
    ConversationState,
    ConversationStore,
    HistoryEntry,
    Interval,
    TurnStart,
    TurnStatus,
)
from bot.storage.memory import MemoryStore
from bot.storage.redis import RedisStore

__all__ = [
    "Advance",
    "ConversationKey",
    "ConversationState",
    "ConversationStore",
    "HistoryEntry",
    "Interval",
    "MemoryStore",
    "RedisStore",
    "TurnStart",
    "TurnStatus",
]

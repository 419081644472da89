"""In-memory :class:`~bot.storage.base.ConversationStore`.

For development (one process) and tests only: nothing survives a restart and
two processes do not share it. The log says so at start-up. Values are stored
as serialised strings, so callers always get copies.

Example::

    store = MemoryStore()
    start = await store.begin_turn(key, "SM1", "t1", lease_seconds=30)
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bot.storage.backend import MemoryValues
from bot.storage.base import (
    ConversationKey,
    ConversationState,
    TurnStart,
    TurnStatus,
    message_digest,
    seen_append,
    seen_contains,
)


@dataclass(slots=True)
class _Queue:
    tokens: deque[str] = field(default_factory=deque)
    leases: dict[str, float] = field(default_factory=dict)


class MemoryStore:
    """A dict with expiries that mirrors the Redis store's semantics exactly."""

    def __init__(self) -> None:
        self.values = MemoryValues()
        self._queues: dict[str, _Queue] = {}

    def _get(self, key: str) -> str | None:
        return self.values.get(key)

    def _set(self, key: str, value: str, ttl: float | None) -> None:
        self.values.set(key, value, ttl)

    def _now(self) -> float:
        return self.values.now()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    # -- turns --------------------------------------------------------------
    async def begin_turn(
        self, key: ConversationKey, message_sid: str, token: str, *, lease_seconds: float
    ) -> TurnStart:
        digest = message_digest(message_sid)
        msg_key = key.part(f"msg:{digest}")
        marker = self._get(msg_key)
        if marker is not None:
            if marker.startswith("A:"):
                return TurnStart(TurnStatus.DUPLICATE, answer=marker[2:], opted_out=await self.is_opted_out(key))
            if marker != f"P:{token}":
                return TurnStart(TurnStatus.IN_FLIGHT)
        elif seen_contains(self._get(key.part("seen")) or "", digest):
            # Handled, and its cached answer has expired: answer nothing.
            return TurnStart(TurnStatus.DUPLICATE, answer="", opted_out=await self.is_opted_out(key))
        self._set(msg_key, f"P:{token}", lease_seconds)
        queue = self._queues.setdefault(key.tag, _Queue())
        now = self._now()
        if token not in queue.leases:
            queue.tokens.append(token)
        queue.leases[token] = now + lease_seconds
        while queue.tokens:
            head = queue.tokens[0]
            if head == token:
                return TurnStart(
                    TurnStatus.ACQUIRED,
                    state=await self.load(key),
                    opted_out=await self.is_opted_out(key),
                )
            if queue.leases.get(head, 0.0) > now:
                return TurnStart(TurnStatus.QUEUED)
            # The head's holder stopped renewing (crashed): skip it.
            queue.tokens.popleft()
            queue.leases.pop(head, None)
        raise AssertionError("unreachable: our own token is in the queue")

    def _release(self, key: ConversationKey, token: str) -> bool:
        queue = self._queues.get(key.tag)
        if queue is None or not queue.tokens or queue.tokens[0] != token:
            if queue is not None and token in queue.leases:
                queue.tokens.remove(token)
                del queue.leases[token]
            return False
        queue.tokens.popleft()
        queue.leases.pop(token, None)
        if not queue.tokens:
            del self._queues[key.tag]
        return True

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
        queue = self._queues.get(key.tag)
        if queue is None or not queue.tokens or queue.tokens[0] != token:
            return False
        if queue.leases.get(token, 0.0) <= self._now():
            # Lease lapsed: a later message may already run; write nothing.
            self._release(key, token)
            return False
        if state is not None:
            self._set(key.part("state"), state.encode(), state_ttl)
        if opted_out is not None:
            await self.set_opted_out(key, opted_out)
        digest = message_digest(message_sid)
        self._set(key.part(f"msg:{digest}"), f"A:{answer}", answer_ttl)
        seen = seen_append(self._get(key.part("seen")) or "", digest)
        self._set(key.part("seen"), seen, max(answer_ttl, seen_ttl or answer_ttl))
        self._release(key, token)
        return True

    async def abort_turn(self, key: ConversationKey, message_sid: str, token: str) -> None:
        msg_key = key.part(f"msg:{message_digest(message_sid)}")
        if self._get(msg_key) == f"P:{token}":
            self.values.delete(msg_key)
        self._release(key, token)

    # -- conversation data ---------------------------------------------------
    async def load(self, key: ConversationKey) -> ConversationState | None:
        raw = self._get(key.part("state"))
        return None if raw is None else ConversationState.decode(raw, key)

    async def is_opted_out(self, key: ConversationKey) -> bool:
        return self._get(key.opt_out_key) is not None

    async def set_opted_out(self, key: ConversationKey, opted_out: bool) -> None:
        if opted_out:
            self._set(key.opt_out_key, "1", None)
        else:
            self.values.delete(key.opt_out_key)

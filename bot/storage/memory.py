"""In-memory :class:`~bot.storage.base.ConversationStore`.

For development (one process) and tests only: nothing survives a restart and
two processes do not share it. The log says so at start-up. Values are stored
as serialised strings, so callers always get copies.

Example::

    store = MemoryStore()
    await store.set("k", "v", ttl=60)
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.storage.base import (
    Advance,
    ConversationKey,
    ConversationState,
    Interval,
    TurnStart,
    TurnStatus,
    interval_from,
    interval_member,
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
        self._values: dict[str, tuple[str, float | None]] = {}
        self._queues: dict[str, _Queue] = {}
        self._indexes: dict[str, dict[str, float]] = {}

    # -- primitives ---------------------------------------------------------
    def _now(self) -> float:
        # Real monotonic time, like Redis' own expiry clock: the injected
        # (possibly frozen) business clock does not age storage.
        return time.monotonic()

    def _get(self, key: str) -> str | None:
        item = self._values.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._now():
            del self._values[key]
            return None
        return value

    def _set(self, key: str, value: str, ttl: float | None) -> None:
        self._values[key] = (value, None if ttl is None else self._now() + ttl)

    async def get(self, key: str) -> str | None:
        return self._get(key)

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        if only_if_absent and self._get(key) is not None:
            return False
        self._set(key, value, ttl)
        return True

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def ttl(self, key: str) -> float | None:
        if self._get(key) is None:
            return None
        expires = self._values[key][1]
        return None if expires is None else expires - self._now()

    async def index_add(self, key: str, member: str, score: float) -> None:
        self._indexes.setdefault(key, {})[member] = score

    async def index_remove(self, key: str, member: str) -> None:
        index = self._indexes.get(key)
        if index is not None:
            index.pop(member, None)

    async def index_range(self, key: str, low: float, high: float) -> list[str]:
        index = self._indexes.get(key, {})
        hits = sorted((score, member) for member, score in index.items() if low <= score <= high)
        return [member for _, member in hits]

    async def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return [self._get(key) for key in keys]

    async def interval_claim(self, key: str, ident: str, start: float, end: float) -> bool:
        member = interval_member(ident, end)
        index = self._indexes.setdefault(key, {})
        mine = [m for m, score in index.items() if interval_from(m, score).ident == ident]
        for m, score in index.items():
            other = interval_from(m, score)
            if other.ident != ident and other.start < end and start < other.end:
                return False
        for m in mine:
            del index[m]
        index[member] = start
        return True

    async def interval_range(self, key: str, low: float, high: float) -> list[Interval]:
        index = self._indexes.get(key, {})
        return sorted(
            (interval_from(m, score) for m, score in index.items() if low <= score <= high),
            key=lambda i: (i.start, i.ident),
        )

    async def interval_remove(self, key: str, ident: str) -> None:
        index = self._indexes.get(key, {})
        for m in [m for m, score in index.items() if interval_from(m, score).ident == ident]:
            del index[m]

    # Records and tallies are JSON strings among the plain values, so
    # ``delete`` and ``ttl`` work on them exactly as on Redis.
    async def advance(self, key: str, state: str, rank: int, *, ttl: float, data: str = "") -> Advance:
        raw = self._get(key)
        record = json.loads(raw) if raw is not None else {}
        record["seen"] = list(record.get("seen") or [])
        first_seen = state not in record["seen"]
        if first_seen:
            record["seen"].append(state)
        applied = "rank" not in record or rank > record["rank"]
        if applied:
            record.update(state=state, rank=rank, data=data)
        self._set(key, json.dumps(record), ttl)
        return Advance(applied=applied, first_seen=first_seen, state=record["state"], data=record["data"])

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool:
        members: dict[str, str] = json.loads(self._get(f"{key}:members") or "{}")
        if member in members:
            return False
        members[member] = outcome
        counts: dict[str, int] = json.loads(self._get(f"{key}:counts") or "{}")
        counts[outcome] = counts.get(outcome, 0) + 1
        self._set(f"{key}:members", json.dumps(members), ttl)
        self._set(f"{key}:counts", json.dumps(counts), ttl)
        return True

    async def tallies(self, key: str) -> dict[str, int]:
        counts: dict[str, int] = json.loads(self._get(f"{key}:counts") or "{}")
        return counts

    async def next_slot(self, key: str, interval: float) -> float:
        now = time.time()
        slot = max(now, float(self._get(key) or 0.0))
        self._set(key, repr(slot + interval), slot + interval - now + 1.0)
        return slot - now

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
                return TurnStart(TurnStatus.DUPLICATE, answer=marker[2:])
            if marker != f"P:{token}":
                return TurnStart(TurnStatus.IN_FLIGHT)
        elif seen_contains(self._get(key.part("seen")) or "", digest):
            # Handled, and its cached answer has expired: answer nothing.
            return TurnStart(TurnStatus.DUPLICATE, answer="")
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
            del self._values[msg_key]
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
            self._values.pop(key.opt_out_key, None)

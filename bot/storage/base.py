"""The storage protocol: conversation turns, opt-outs and a few primitives.

One small protocol, two implementations (:mod:`bot.storage.memory` for
development and tests, :mod:`bot.storage.redis` for production), both held to
one contract suite (``tests/bot/storage/test_contract.py``).

A *turn* is the unit of exactly-once, in-order processing:

1. :meth:`ConversationStore.begin_turn` (one round trip) records the message
   as in progress, joins the conversation's FIFO queue and, when first in
   line, returns the saved state and opt-out flag. A retried ``MessageSid``
   gets the cached answer instead.
2. :meth:`ConversationStore.commit_turn` (one round trip) writes the new
   state, the answer for retries and the opt-out change atomically, and lets
   the next message in line go. :meth:`abort_turn` gives up without writing.

Keys are hash-tagged per conversation (``conv:{sms:+1500:+1415}:state``) so
they stay on one Redis Cluster slot; no ``KEYS`` command is ever used.

Example::

    key = ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550123")
    start = await store.begin_turn(key, "SM1", token, lease_seconds=30)
    if start.status is TurnStatus.ACQUIRED:
        state = start.state or ConversationState.new(key)
        ...
        await store.commit_turn(key, "SM1", token, state=state, answer="<Response/>",
                                state_ttl=3600, answer_ttl=3600)
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from bot.messages import Channel


@dataclass(frozen=True, slots=True)
class ConversationKey:
    """Identifies one conversation: a channel, the bot's number and the user's."""

    channel: Channel
    bot: str
    user: str

    @property
    def tag(self) -> str:
        """The Redis Cluster hash tag shared by every key of this conversation."""
        return "{" + f"{self.channel.value}:{self.bot}:{self.user}" + "}"

    def part(self, name: str) -> str:
        """The storage key of one part: ``conv:{sms:+1500:+1415}:state``."""
        return f"conv:{self.tag}:{name}"

    @property
    def opt_out_key(self) -> str:
        """Opt-out lives apart from the conversation and never expires with it."""
        return f"optout:{self.tag}"


@dataclass(slots=True)
class HistoryEntry:
    """One line of the capped recent history."""

    at: float
    role: str  # "user" | "bot"
    text: str
    intent: str | None = None


@dataclass(slots=True)
class ConversationState:
    """Everything the bot remembers about one conversation.

    Kept small on purpose (a few hundred bytes): it is read and written on
    every message.
    """

    channel: Channel
    bot: str
    user: str
    flow: str | None = None
    step: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    last_inbound_at: float | None = None
    turns: int = 0
    history: list[HistoryEntry] = field(default_factory=list)
    # Free-form per-feature data (hand-off, pending choices, locale ...).
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def new(cls, key: ConversationKey) -> ConversationState:
        return cls(channel=key.channel, bot=key.bot, user=key.user)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, self.bot, self.user)

    def remember(self, entry: HistoryEntry, limit: int) -> None:
        """Append to the history, keeping at most ``limit`` entries."""
        self.history.append(entry)
        if len(self.history) > limit:
            del self.history[: len(self.history) - limit]

    def copy(self) -> ConversationState:
        """A deep-enough copy: a failed turn must never leak into the stored state."""
        return replace(
            self,
            slots=json.loads(json.dumps(self.slots)),
            history=[replace(h) for h in self.history],
            data=json.loads(json.dumps(self.data)),
        )

    def to_json(self) -> str:
        raw = asdict(self)
        raw["channel"] = self.channel.value
        raw["history"] = [[h.at, h.role, h.text, h.intent] for h in self.history]
        # Compact: state is stored per conversation; every byte counts at scale.
        return json.dumps({k: v for k, v in raw.items() if v not in (None, {}, [])},
                          separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str | bytes) -> ConversationState:
        data = json.loads(raw)
        data["channel"] = Channel(data["channel"])
        data["history"] = [HistoryEntry(*h) for h in data.get("history", [])]
        return cls(**data)


class TurnStatus(enum.Enum):
    """What :meth:`ConversationStore.begin_turn` found."""

    ACQUIRED = "acquired"  # first in line: run the turn
    DUPLICATE = "duplicate"  # this MessageSid was answered already
    IN_FLIGHT = "in_flight"  # another delivery of this MessageSid is running it
    QUEUED = "queued"  # an earlier message of this conversation is running


@dataclass(frozen=True, slots=True)
class TurnStart:
    status: TurnStatus
    state: ConversationState | None = None
    opted_out: bool = False
    answer: str | None = None


@dataclass(frozen=True, slots=True)
class Advance:
    """What :meth:`ConversationStore.advance` found and did.

    ``applied``: the record moved to the new state. ``first_seen``: this state
    was never reported for the key before (count it once). ``state`` and
    ``data`` are the record's current values after the call.
    """

    applied: bool
    first_seen: bool
    state: str
    data: str = ""


class ConversationStore(Protocol):
    """Storage for conversations. Implementations: memory, Redis."""

    async def begin_turn(
        self, key: ConversationKey, message_sid: str, token: str, *, lease_seconds: float
    ) -> TurnStart:
        """Join the conversation's queue for ``message_sid`` (idempotent per token).

        Call again with the same token to poll; every call renews the lease.
        A holder whose lease lapsed (crashed process) is skipped.
        """
        ...

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
    ) -> bool:
        """Atomically save state, answer and opt-out change; release the turn.

        Returns False (and writes nothing) when the turn was lost because its
        lease lapsed.
        """
        ...

    async def abort_turn(self, key: ConversationKey, message_sid: str, token: str) -> None:
        """Release the turn without writing; a retry of the message runs again."""
        ...

    async def load(self, key: ConversationKey) -> ConversationState | None: ...

    async def is_opted_out(self, key: ConversationKey) -> bool: ...

    async def set_opted_out(self, key: ConversationKey, opted_out: bool) -> None: ...

    # Small primitives for features (appointments, delivery records, jobs).
    async def get(self, key: str) -> str | None: ...

    async def set(
        self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False
    ) -> bool:
        """Set a value; with ``only_if_absent`` return False if it existed."""
        ...

    async def delete(self, key: str) -> None: ...

    async def ttl(self, key: str) -> float | None:
        """Seconds left to live; None when the key is missing or never expires."""
        ...

    async def index_add(self, key: str, member: str, score: float) -> None:
        """Add ``member`` to the sorted index ``key`` (a Redis sorted set)."""
        ...

    async def index_remove(self, key: str, member: str) -> None: ...

    async def index_range(self, key: str, low: float, high: float) -> list[str]:
        """Members with ``low <= score <= high``, lowest score first."""
        ...

    async def advance(self, key: str, state: str, rank: int, *, ttl: float, data: str = "") -> Advance:
        """Move a forward-only state record, atomically (delivery statuses).

        The record at ``key`` takes ``state`` (and ``data``) only when ``rank``
        is above its current rank, so late or repeated reports never move it
        back; every state reported is remembered, so ``first_seen`` is True
        once per (key, state). The TTL is renewed on every call. The record
        is JSON that :meth:`get` reads: ``{"state", "rank", "data", "seen"}``.

        Example::

            await store.advance("status:SM1", "delivered", 4, ttl=3600)  # applied
            await store.advance("status:SM1", "sent", 3, ttl=3600)       # not applied, first_seen
        """
        ...

    async def tally(self, key: str, member: str, outcome: str, *, ttl: float | None = None) -> bool:
        """Count ``member``'s ``outcome`` under ``key`` once, atomically (campaign summaries).

        Returns False, counting nothing, when ``member`` already has an outcome.
        On Redis ``key`` should carry a hash tag (``campaign:{spring}``): the
        member set and the counts are two keys beside it.
        """
        ...

    async def tallies(self, key: str) -> dict[str, int]:
        """The counts per outcome under ``key`` (empty when nothing was tallied)."""
        ...

    async def next_slot(self, key: str, interval: float) -> float:
        """Reserve the next free slot on a shared pace; seconds from now until it starts.

        Slots are ``interval`` seconds apart per ``key`` (one sending number),
        whichever process asks, so many workers together keep one rate.
        Returns 0 when the pace is idle: the slot is now.
        """
        ...

    async def ping(self) -> None:
        """Raise :class:`~bot.errors.StoreError` when the backend is unreachable."""
        ...

    async def close(self) -> None: ...

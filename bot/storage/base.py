"""The conversation store protocol: turns, state and opt-outs.

One of four small storage protocols (the others: appointments in
:mod:`bot.storage.appointments`, the outbound ledger in
:mod:`bot.storage.ledger`, background jobs in :mod:`bot.storage.jobs`; see
:class:`bot.storage.stores.Stores`). Two implementations,
:mod:`bot.storage.memory` for development and tests and
:mod:`bot.storage.redis` for production, held to one contract suite
(``tests/bot/storage/test_contract.py``).

A *turn* is the unit of exactly-once, in-order processing:

1. :meth:`ConversationStore.begin_turn` (one round trip) records the message
   as in progress, joins the conversation's FIFO queue and, when first in
   line, returns the saved state and opt-out flag. A retried ``MessageSid``
   gets the cached answer instead (or, once that expired, an empty one).
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

import base64
import enum
import hashlib
import json
import zlib
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

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

    def _fields(self) -> dict[str, Any]:
        # Built by hand (not dataclasses.asdict, which deep-copies every
        # value): this runs on every message. Empty fields are left out.
        raw: dict[str, Any] = {}
        if self.flow is not None:
            raw["flow"] = self.flow
        if self.step is not None:
            raw["step"] = self.step
        if self.slots:
            raw["slots"] = self.slots
        if self.last_inbound_at is not None:
            raw["last_inbound_at"] = round(self.last_inbound_at, 3)
        if self.turns:
            raw["turns"] = self.turns
        if self.history:
            raw["history"] = [
                [round(h.at, 3), h.role, h.text] if h.intent is None else [round(h.at, 3), h.role, h.text, h.intent]
                for h in self.history
            ]
        if self.data:
            raw["data"] = self.data
        return raw

    def encode(self) -> str:
        """The stored form: what the stores write under ``conv:{...}:state``.

        The channel and addresses are left out (the key holds them), and a
        long state (history) is zlib-compressed: bot replies repeat a lot, so
        a 40-entry history shrinks about 4x. Text-safe (base64), since the
        Redis client decodes every value as UTF-8.

        Example::

            raw = state.encode()                       # '{"turns":1,...}' or 'z:eNp...'
            ConversationState.decode(raw, state.key)   # == state
        """
        text = json.dumps(self._fields(), separators=(",", ":"), ensure_ascii=False)
        if len(text) <= COMPRESS_ABOVE:
            return text
        return "z:" + base64.b64encode(zlib.compress(text.encode(), 1)).decode("ascii")

    @classmethod
    def decode(cls, raw: str | bytes, key: ConversationKey) -> ConversationState:
        """Read :meth:`encode`'s output for ``key`` (also the older form that kept the addresses)."""
        if isinstance(raw, bytes):
            raw = raw.decode()
        if raw.startswith("z:"):
            raw = zlib.decompress(base64.b64decode(raw[2:])).decode()
        data = json.loads(raw)
        for name in ("channel", "bot", "user"):  # the key is authoritative
            data.pop(name, None)
        history = [HistoryEntry(*h) for h in data.pop("history", ())]
        return cls(channel=key.channel, bot=key.bot, user=key.user, history=history, **data)


#: States longer than this (JSON characters) are stored compressed.
COMPRESS_ABOVE: Final = 400

#: How many recent MessageSids per conversation are recognised as already
#: handled (for ``DEDUPE_TTL_SECONDS``) after their cached answer expired.
SEEN_KEPT: Final = 32
#: Characters of one MessageSid digest in the ``seen`` record.
DIGEST_CHARS: Final = 8


def message_digest(message_sid: str) -> str:
    """A short, fixed-length stand-in for a ``MessageSid`` in dedupe keys.

    48 bits of SHA-256, base64url: collisions within one conversation's last
    few dozen messages are out of reach (~1e-11), and 8 characters instead of
    34 keep the per-message keys and the ``seen`` record small.

    >>> message_digest("SM" + "0" * 32)
    'kiWweOL3'
    """
    return base64.urlsafe_b64encode(hashlib.sha256(message_sid.encode()).digest()[:6]).decode("ascii")


def seen_contains(seen: str, digest: str) -> bool:
    """Whether ``digest`` is one of the fixed-width entries of ``seen``."""
    start = seen.find(digest)
    while start >= 0:
        if start % DIGEST_CHARS == 0:
            return True
        start = seen.find(digest, start + 1)
    return False


def seen_append(seen: str, digest: str) -> str:
    """``seen`` with ``digest`` added, keeping the newest :data:`SEEN_KEPT`."""
    return (seen + digest)[-SEEN_KEPT * DIGEST_CHARS :]


class TurnStatus(enum.Enum):
    """What :meth:`ConversationStore.begin_turn` found."""

    ACQUIRED = "acquired"  # first in line: run the turn
    DUPLICATE = "duplicate"  # this MessageSid was answered already
    IN_FLIGHT = "in_flight"  # another delivery of this MessageSid is running it
    QUEUED = "queued"  # an earlier message of this conversation is running


@dataclass(frozen=True, slots=True)
class TurnStart:
    """What :meth:`ConversationStore.begin_turn` found.

    ``opted_out`` is the user's flag now, for ACQUIRED and DUPLICATE alike: a
    retry's cached answer may predate a STOP and must then not be served.
    """

    status: TurnStatus
    state: ConversationState | None = None
    opted_out: bool = False
    answer: str | None = None


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
        seen_ttl: int | None = None,
    ) -> bool:
        """Atomically save state, answer and opt-out change; release the turn.

        The answer is cached for ``answer_ttl`` seconds: a retry of this
        ``MessageSid`` gets it byte for byte. The message also joins the
        conversation's ``seen`` record (its last :data:`SEEN_KEPT` messages,
        kept ``seen_ttl`` seconds, default ``answer_ttl``): a retry after the
        answer expired is still a duplicate, answered with nothing.

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

    async def ping(self) -> None:
        """Raise :class:`~bot.errors.StoreError` when the backend is unreachable."""
        ...

    async def close(self) -> None: ...

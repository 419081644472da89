"""The consent ledger: every opt-in and opt-out, append-only, for audits.

The opt-out flag (``optout:{...}``) says what holds now; the ledger says
when and why it changed: time, channel, the address masked and hashed (never
in clear), the source, the MessageSid and the words that matched. Entries
are never changed, deleted or expired.

An entry's ``id`` names the event for good (``opt_out:sms:<hash>:SM123``): appending
the same id twice keeps the first entry, so a retried webhook or job never
records twice.

Redis keys (the two ``{consent}`` keys share a cluster slot, so the append
is one atomic script):

- ``{consent}:ids``: hash, event id -> entry JSON (the dedupe record);
- ``{consent}:log``: sorted set of entry JSON by time (``export --since``);
- ``consent:{<hash>}:events``: sorted set, one address's entries by time.

Example::

    ledger = MemoryConsentLedger()
    event = ConsentEvent.create(action="opt_out", channel=Channel.SMS, bot="+15005550006",
                                user="+14155550123", source="natural_language", at=now,
                                message_sid="SM1", words="stop texting me", hasher=AddressHasher())
    await ledger.append(event)        # True; again: False
    await ledger.history(event.address_hash)
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal, Protocol, get_args

from bot.messages import Channel
from bot.observability import mask_phone
from bot.storage.backend import RedisBackend
from bot.storage.base import ConversationStore

Action = Literal["opt_out", "opt_in"]
#: Where a consent change came from.
#: ``twilio_keyword``: a single-word keyword Twilio's filter acted on (SMS);
#: ``bot_keyword``: a keyword only the bot acts on (WhatsApp, "baja", the cancel question);
#: ``natural_language``: a revocation in other words (FCC 24-24);
#: ``platform_21610``: Twilio refused a send because the recipient opted out;
#: ``staff``: recorded by staff (``bot consent opt-out``/``opt-in``);
#: ``verified``: a number confirmed through Twilio Verify;
#: ``marketing``: consent to marketing (recall invitations, docs/confirmations.md), an opt-in of its own.
Source = Literal["twilio_keyword", "bot_keyword", "natural_language", "platform_21610", "staff", "verified",
                 "marketing"]
SOURCES: Final = frozenset(get_args(Source))
ACTIONS: Final = frozenset(get_args(Action))
#: The CSV columns of ``bot consent export``, in order.
FIELDS: Final = ("time", "action", "channel", "address", "address_hash", "source", "message_sid", "words", "bot", "id")


class AddressHasher:
    """The stable, non-reversible name of a phone number in the ledger.

    HMAC-SHA256 keyed with ``CONSENT_HASH_KEY`` when set (recommended: a
    plain hash of a phone number can be reversed by trying every number);
    plain SHA-256 otherwise. Changing the key makes older entries
    unreachable by number, so set it once.

    >>> AddressHasher().hash("whatsapp:+14155550123") == AddressHasher().hash("+14155550123")
    True
    """

    def __init__(self, key: str | None = None) -> None:
        self._key = key.encode() if key else None

    def hash(self, address: str) -> str:
        number = Channel.from_address(address)[1]
        if self._key is None:
            return hashlib.sha256(number.encode()).hexdigest()[:32]
        return hmac.new(self._key, number.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One opt-in or opt-out, as recorded."""

    id: str
    at: float
    action: Action
    channel: Channel
    bot: str
    address: str  # masked
    address_hash: str
    source: Source
    message_sid: str = ""
    words: str = ""

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {sorted(ACTIONS)}")
        if self.source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}")

    @classmethod
    def create(
        cls,
        *,
        action: Action,
        channel: Channel,
        bot: str,
        user: str,
        source: Source,
        at: datetime,
        hasher: AddressHasher,
        message_sid: str = "",
        words: str = "",
        event_id: str | None = None,
    ) -> ConsentEvent:
        """An event for ``user``; its id defaults to ``<action>:<MessageSid>`` (or the time)."""
        address_hash = hasher.hash(user)
        ident = event_id or f"{action}:{channel.value}:{address_hash}:{message_sid or at.timestamp()}"
        return cls(
            id=ident, at=at.timestamp(), action=action, channel=channel, bot=bot, address=mask_phone(user),
            address_hash=address_hash, source=source, message_sid=message_sid, words=words[:200],
        )

    @property
    def time(self) -> str:
        """The event's time, ISO 8601 in UTC."""
        return datetime.fromtimestamp(self.at, UTC).isoformat(timespec="seconds")

    def to_json(self) -> str:
        raw = asdict(self)
        raw["channel"] = self.channel.value
        return json.dumps(raw, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> ConsentEvent:
        data: dict[str, Any] = json.loads(raw)
        data["channel"] = Channel(data["channel"])
        return cls(**data)

    def row(self) -> dict[str, str]:
        """The event as a CSV row (:data:`FIELDS`)."""
        return {
            "time": self.time, "action": self.action, "channel": self.channel.value, "address": self.address,
            "address_hash": self.address_hash, "source": self.source, "message_sid": self.message_sid,
            "words": self.words, "bot": self.bot, "id": self.id,
        }


class ConsentLedger(Protocol):
    """Append-only record of consent changes."""

    async def append(self, event: ConsentEvent) -> bool:
        """Record ``event``; False (and nothing written) when its id is already recorded."""
        ...

    async def history(self, address_hash: str) -> list[ConsentEvent]:
        """Every event of one address (all channels), oldest first."""
        ...

    async def since(self, at: float, *, limit: int = 10_000, offset: int = 0) -> list[ConsentEvent]:
        """Events at or after ``at`` (epoch seconds), oldest first, a page at a time."""
        ...


def latest(events: Sequence[ConsentEvent], channel: Channel, bot: str | None = None) -> ConsentEvent | None:
    """The newest event of ``events`` on ``channel`` (and ``bot``, when given)."""
    found = [e for e in events if e.channel is channel and (bot is None or e.bot == bot)]
    return found[-1] if found else None


class MemoryConsentLedger:
    """In-process ledger (development and tests); same contract as Redis."""

    def __init__(self) -> None:
        self._ids: dict[str, ConsentEvent] = {}
        self._log: list[tuple[float, int, ConsentEvent]] = []

    async def append(self, event: ConsentEvent) -> bool:
        if event.id in self._ids:
            return False
        self._ids[event.id] = event
        bisect.insort(self._log, (event.at, len(self._log), event))
        return True

    async def history(self, address_hash: str) -> list[ConsentEvent]:
        return [e for _, _, e in self._log if e.address_hash == address_hash]

    async def since(self, at: float, *, limit: int = 10_000, offset: int = 0) -> list[ConsentEvent]:
        start = bisect.bisect_left(self._log, (at, -1))
        return [e for _, _, e in self._log[start + offset : start + offset + limit]]


# KEYS: ids, log. ARGV: event id, entry JSON, time. Returns {1, json} or {0, first json}.
_APPEND = """
local first = redis.call('HGET', KEYS[1], ARGV[1])
if first then return {0, first} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return {1, ARGV[2]}
"""
_IDS: Final = "{consent}:ids"
_LOG: Final = "{consent}:log"


def _address_key(address_hash: str) -> str:
    return "consent:{" + address_hash + "}:events"


class RedisConsentLedger:
    """The ledger in Redis (plain, Cluster or Sentinel, through the process's backend); keys never expire."""

    def __init__(self, backend: RedisBackend) -> None:
        self._backend = backend
        self._append = backend.client.register_script(_APPEND)

    @classmethod
    def on(cls, client: Any) -> RedisConsentLedger:
        """A ledger on a bare redis-py asyncio client (tests, tools)."""
        return cls(RedisBackend(client))

    async def append(self, event: ConsentEvent) -> bool:
        call = self._backend.call
        added, entry = await call(self._append(keys=[_IDS, _LOG], args=[event.id, event.to_json(), event.at]))
        # The per-address index is written after the atomic append; adding the
        # first entry again (idempotent) mends a crash between the two.
        first = ConsentEvent.from_json(entry)
        await call(self._backend.client.zadd(_address_key(first.address_hash), {entry: first.at}))
        return bool(int(added))

    async def history(self, address_hash: str) -> list[ConsentEvent]:
        raw = await self._backend.call(self._backend.client.zrange(_address_key(address_hash), 0, -1))
        return [ConsentEvent.from_json(r) for r in raw]

    async def since(self, at: float, *, limit: int = 10_000, offset: int = 0) -> list[ConsentEvent]:
        raw = await self._backend.call(
            self._backend.client.zrangebyscore(_LOG, at, "+inf", start=offset, num=limit)
        )
        return [ConsentEvent.from_json(r) for r in raw]


def build_consent_ledger(store: ConversationStore) -> ConsentLedger:
    """The ledger beside ``store``: in the same Redis, or in memory for the memory store."""
    from bot.storage.redis import RedisStore  # the one place that picks an implementation

    if isinstance(store, RedisStore):
        return RedisConsentLedger(store.backend)
    return MemoryConsentLedger()

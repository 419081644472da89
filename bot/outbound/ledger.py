"""The send ledger: idempotency claims and the records status callbacks read.

Twilio's Messages API has no idempotency key, so we keep our own. Before a
send, :meth:`SendLedger.claim` writes a *pending* record for the request's
idempotency key (only if none exists) with a lease; after Twilio's 201 the
record becomes *sent* with the message SID. A second attempt with the same
key then:

- finds *sent*: returns the first result, sends nothing;
- finds *pending* within its lease: someone is sending right now, try later;
- finds *pending* past its lease: the first attempt died mid-send (a worker
  killed after Twilio accepted the message but before the record said so).
  The sender then looks for the message at Twilio before sending again.

Records are keyed by a hash of the idempotency key (``out:{<ref>}``), so
phone numbers in keys like ``bcast:spring:+1415...`` stay out of key names,
job ids and the status-callback URL (``?ref=<ref>`` identifies the send even
before we learn its SID). ``outmsg:{<sid>}`` maps a SID back to its record.

Example::

    ledger = SendLedger(store)
    record = SendRecord.pending(request, token="t1", lease_seconds=60, claimed_at=clock.timestamp())
    existing = await ledger.claim(record)        # None: ours now
    await ledger.complete(record, sid="SM1", status="queued")
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal

from bot.messages import Channel, TemplateMessage
from bot.outbound.models import Purpose, SendRequest, SendResult
from bot.storage.base import ConversationKey
from bot.storage.ledger import LedgerStore

#: How long a send is remembered: re-runs within it never send twice, and
#: status callbacks (WhatsApp "read" can come days later) find their context.
DEFAULT_TTL: Final = 7 * 24 * 3600.0


def ref_for(idempotency_key: str) -> str:
    """A short, stable, non-identifying reference for an idempotency key."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRecord:
    """One send's ledger entry; also the context a status callback needs."""

    state: Literal["pending", "sent"]
    ref: str
    idempotency_key: str
    channel: Channel
    bot: str
    user: str
    purpose: Purpose
    campaign: str | None = None
    fallback_template: TemplateMessage | None = None
    token: str = ""
    lease_until: float = 0.0  # wall clock (time.time): leases span processes
    claimed_at: float = 0.0  # the injected clock: compared with Twilio's dates
    sid: str | None = None
    status: str | None = None
    template: str | None = None
    window_fallback: bool = False

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, self.bot, self.user)

    @classmethod
    def pending(
        cls, request: SendRequest, *, token: str, lease_seconds: float, claimed_at: float
    ) -> SendRecord:
        return cls(
            state="pending",
            ref=ref_for(request.idempotency_key),
            idempotency_key=request.idempotency_key,
            channel=request.key.channel,
            bot=request.key.bot,
            user=request.key.user,
            purpose=request.purpose,
            campaign=request.campaign,
            fallback_template=request.fallback_template,
            token=token,
            lease_until=time.time() + lease_seconds,
            claimed_at=claimed_at,
        )

    @property
    def lease_lapsed(self) -> bool:
        return self.state == "pending" and time.time() >= self.lease_until

    def result(self, *, duplicate: bool) -> SendResult:
        assert self.sid is not None
        return SendResult(
            sid=self.sid, status=self.status or "queued", idempotency_key=self.idempotency_key,
            channel=self.channel, template=self.template, duplicate=duplicate,
            window_fallback=self.window_fallback,
        )

    def to_json(self) -> str:
        raw: dict[str, Any] = asdict(self)
        raw["channel"] = self.channel.value
        fallback = self.fallback_template
        raw["fallback_template"] = None if fallback is None else [
            fallback.name, dict(fallback.variables), *([fallback.language] if fallback.language else [])]
        return json.dumps(raw, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> SendRecord:
        data = json.loads(raw)
        data["channel"] = Channel(data["channel"])
        fallback = data.get("fallback_template")
        data["fallback_template"] = None if fallback is None else TemplateMessage(*fallback)
        return cls(**data)


def _record_key(ref: str) -> str:
    return "out:{" + ref + "}"


def _message_key(sid: str) -> str:
    return "outmsg:{" + sid + "}"


class SendLedger:
    """Claims, completions and SID lookups on the store's primitives."""

    def __init__(self, store: LedgerStore, *, ttl: float = DEFAULT_TTL) -> None:
        self.store = store
        self.ttl = ttl

    async def get(self, ref: str) -> SendRecord | None:
        raw = await self.store.get(_record_key(ref))
        return None if raw is None else SendRecord.from_json(raw)

    async def claim(self, record: SendRecord) -> SendRecord | None:
        """Write ``record`` (pending) if the key is free: None means it is ours.

        Otherwise returns what is there (sent, or someone else's pending claim).
        """
        if await self.store.set(_record_key(record.ref), record.to_json(), ttl=self.ttl, only_if_absent=True):
            return None
        existing = await self.get(record.ref)
        if existing is None:  # expired between the two calls: try once more
            if await self.store.set(_record_key(record.ref), record.to_json(), ttl=self.ttl, only_if_absent=True):
                return None
            existing = await self.get(record.ref)
        return existing

    async def take_over(self, stale: SendRecord, record: SendRecord) -> bool:
        """Replace a pending claim whose lease lapsed; only one contender wins."""
        marker = f"{_record_key(record.ref)}:takeover:{stale.token}"
        if not await self.store.set(marker, record.token, ttl=self.ttl, only_if_absent=True):
            return False
        await self.store.set(_record_key(record.ref), record.to_json(), ttl=self.ttl)
        return True

    async def complete(
        self, record: SendRecord, *, sid: str, status: str, template: str | None = None,
        window_fallback: bool = False,
    ) -> SendRecord:
        """Mark the send done and index its SID for status callbacks."""
        done = replace(record, state="sent", sid=sid, status=status, template=template,
                       window_fallback=window_fallback, token="", lease_until=0.0)
        payload = done.to_json()
        await self.store.set(_record_key(done.ref), payload, ttl=self.ttl)
        await self.store.set(_message_key(sid), payload, ttl=self.ttl)
        return done

    async def release(self, record: SendRecord) -> None:
        """Drop our pending claim after a failure, so a later attempt may send."""
        current = await self.get(record.ref)
        if current is not None and current.state == "pending" and current.token == record.token:
            await self.store.delete(_record_key(record.ref))

    async def message(self, sid: str) -> SendRecord | None:
        """The record of the send that produced ``sid``, if we still know it."""
        raw = await self.store.get(_message_key(sid))
        return None if raw is None else SendRecord.from_json(raw)

    async def owner_of(self, sid: str) -> str | None:
        """The ref of the send that produced ``sid``, if it is ours."""
        record = await self.message(sid)
        return None if record is None else record.ref

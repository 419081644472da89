"""Delivery tracking: what Twilio's status callbacks mean for us.

Twilio reports each message's progress
(``accepted|scheduled → queued → sending → sent → delivered|undelivered|failed
→ read``; ``canceled`` ends it), but callbacks arrive out of order and more
than once. :class:`DeliveryTracker` keeps one forward-only state per message
(:meth:`~bot.storage.ledger.LedgerStore.advance`, atomic), counts each
(message, status) once in metrics, and acts once on failures:

- 21610: the user opted out: suppressed everywhere from now on;
- 21211 / 21614 / 30006: the number is marked unreachable;
- 63016: the WhatsApp window was closed after all: the message's fallback
  template goes out through the outbox instead (once);
- anything else: logged with the message's context (masked).

Example::

    tracker = DeliveryTracker(store=store, ledger=ledger, suppressions=suppressions,
                              campaigns=campaigns, outbox=outbox, metrics=metrics)
    await tracker.record(StatusCallback(sid="SM1", status="delivered"))
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Final

from bot.messages import Channel
from bot.observability import OTHER, Metrics, error_code_label, mask_phone
from bot.outbound.campaigns import Campaigns
from bot.outbound.errors import OPTED_OUT_CODE, OUTSIDE_WINDOW_CODE, UNREACHABLE_CODES
from bot.outbound.ledger import DEFAULT_TTL, SendLedger, SendRecord
from bot.outbound.models import SendRequest
from bot.outbound.outbox import Outbox
from bot.outbound.suppression import Suppressions
from bot.storage.base import ConversationKey
from bot.storage.ledger import LedgerStore

log = logging.getLogger("bot.outbound.status")

#: Twilio's order; equal ranks are alternatives (the first report wins).
STATUS_RANK: Final = {
    "accepted": 0, "scheduled": 0,
    "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4,
    "read": 5,
    "canceled": 6,  # terminal: nothing moves it
}
FAILED: Final = frozenset({"failed", "undelivered"})
FINAL: Final = frozenset({"delivered", "undelivered", "failed", "read", "canceled"})
WINDOW_RETRY_SUFFIX: Final = ":window"


@dataclass(frozen=True, slots=True)
class StatusCallback:
    """The fields of one status callback we use (the webhook maps the form)."""

    sid: str
    status: str
    error_code: int | None = None
    to: str | None = None
    from_: str | None = None
    ref: str | None = None  # our send's reference, from the callback URL


@dataclass(frozen=True, slots=True)
class StatusOutcome:
    """What one callback did: the message's state now, and whether it was news."""

    state: str
    applied: bool
    first_seen: bool
    action: str | None = None


def status_key(sid: str) -> str:
    return "status:{" + sid + "}"


class DeliveryTracker:
    """Applies status callbacks; idempotent per (MessageSid, MessageStatus)."""

    def __init__(
        self,
        *,
        store: LedgerStore,
        ledger: SendLedger,
        suppressions: Suppressions,
        campaigns: Campaigns,
        outbox: Outbox,
        metrics: Metrics,
        ttl: float = DEFAULT_TTL,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.suppressions = suppressions
        self.campaigns = campaigns
        self.outbox = outbox
        self.metrics = metrics
        self.ttl = ttl

    async def state(self, sid: str) -> str | None:
        """The message's current status as callbacks reported it (None: none yet)."""
        raw = await self.store.get(status_key(sid))
        return None if raw is None else str(json.loads(raw)["state"])

    async def record(self, callback: StatusCallback) -> StatusOutcome:
        status = callback.status.strip().lower()
        code = callback.error_code
        rank = STATUS_RANK.get(status)
        if rank is None:
            # A status Twilio added since: count it, keep no state.
            self.metrics.status_callbacks.labels(OTHER, error_code_label(code)).inc()
            log.info("unknown message status", extra={"fields": {"sid": callback.sid, "status": status[:32]}})
            return StatusOutcome(state=status, applied=False, first_seen=True)
        data = json.dumps({"error_code": code}) if code is not None else ""
        advance = await self.store.advance(status_key(callback.sid), status, rank, ttl=self.ttl, data=data)
        if not advance.first_seen:
            return StatusOutcome(state=advance.state, applied=False, first_seen=False)
        self.metrics.status_callbacks.labels(status, error_code_label(code)).inc()
        context = await self._context(callback)
        action = None
        if status in FAILED:
            action = await self._on_failure(callback, status, context)
        if context is not None and context.campaign and status in FINAL:
            await self.campaigns.record_delivery(context.campaign, callback.sid, status)
        return StatusOutcome(state=advance.state, applied=advance.applied, first_seen=True, action=action)

    async def _context(self, callback: StatusCallback) -> SendRecord | None:
        if callback.ref:
            record = await self.ledger.get(callback.ref)
            if record is not None:
                return record
        return await self.ledger.message(callback.sid)

    async def _on_failure(self, callback: StatusCallback, status: str, context: SendRecord | None) -> str | None:
        code = callback.error_code
        key = context.key if context is not None else _key_from_addresses(callback)
        fields = _fields(callback, status, context, key)
        if code == OPTED_OUT_CODE or code in UNREACHABLE_CODES:
            if key is None:
                log.warning("delivery failed; recipient unknown", extra={"fields": fields})
                return None
            changed = await self.suppressions.record_error(
                key, code, source="status_callback", message_sid=callback.sid
            )
            log.info("delivery failed; recipient suppressed", extra={"fields": {**fields, "suppressed": changed}})
            return changed
        if code == OUTSIDE_WINDOW_CODE:
            return await self._window_retry(context, fields)
        log.warning("delivery failed", extra={"fields": fields})
        return None

    async def _window_retry(self, context: SendRecord | None, fields: dict[str, Any]) -> str | None:
        if context is None or context.fallback_template is None or context.window_fallback \
                or context.idempotency_key.endswith(WINDOW_RETRY_SUFFIX):
            log.warning("63016 outside the WhatsApp window; no template to retry with", extra={"fields": fields})
            return None
        # ``template=`` (not a fallback): the window is known closed, whatever
        # the stored state says, and the suffix makes this retry happen once.
        await self.outbox.submit(SendRequest(
            key=context.key, template=context.fallback_template, purpose=context.purpose,
            idempotency_key=context.idempotency_key + WINDOW_RETRY_SUFFIX,
        ))
        log.info("63016: template retry queued", extra={"fields": fields})
        return "template_retry"


def _key_from_addresses(callback: StatusCallback) -> ConversationKey | None:
    # No record of the send (expired, or sent by something else): the
    # addresses still say who it was for.
    if not callback.to or not callback.from_:
        return None
    channel, user = Channel.from_address(callback.to)
    _, bot = Channel.from_address(callback.from_)
    return ConversationKey(channel, bot, user)


def _fields(
    callback: StatusCallback, status: str, context: SendRecord | None, key: ConversationKey | None
) -> dict[str, Any]:
    fields: dict[str, Any] = {"sid": callback.sid, "status": status, "error_code": callback.error_code}
    if key is not None:
        fields.update(channel=key.channel.value, user=mask_phone(key.user))
    if context is not None:
        fields.update(ref=context.ref, purpose=context.purpose, template=context.template,
                      campaign=context.campaign)
    return fields

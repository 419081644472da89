"""The quiet-hours gate of the sender: holds bot-started messages until the recipient's allowed hours.

The sender asks :meth:`QuietGate.check` before each send. A message the bot
starts (reminder, broadcast, a follow-up, an answer later than
``late_answer_minutes`` after the person wrote) whose recipient is in quiet
hours is handed to the outbox for the next allowed minute and recorded
(``held:{...}`` in the store, ``bot_outbound_held_total{reason}``); the send
raises :class:`~bot.outbound.errors.SendHeld`. At the release time the outbox
sends it through the sender again, so opt-out, the WhatsApp window and the
idempotency key are checked then: never sent to someone who opted out
meanwhile, never sent twice. Compliance confirmations and staff hand-off
alerts are never held.

Example::

    gate = QuietGate(policy=policy, store=store, records=jobs, book=book, clock=clock, metrics=metrics)
    gate.sink = outbox.submit_held
    hold = await gate.check(request)        # None: send now
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from bot.appointments import AppointmentBook
from bot.clock import Clock
from bot.observability import Metrics, mask_phone
from bot.outbound.ledger import ref_for
from bot.outbound.models import SendRequest
from bot.quiet_hours import Hold, QuietHoursPolicy, until_text
from bot.storage.backend import Records
from bot.storage.base import ConversationKey, ConversationStore

log = logging.getLogger("bot.outbound.quiet")

#: Purposes never held: a person waits for these (staff alerts go to the business's own phone).
NEVER_HELD: Final = frozenset({"handoff"})
#: How long a held record is kept after its release time (the dev phone shows it until sent).
HELD_TTL_MARGIN: Final = 6 * 3600.0


def held_key(key: ConversationKey) -> str:
    """The held messages of one conversation: ``conv:{sms:+1...:+1...}:held`` (its hash tag)."""
    return "conv:{" + f"{key.channel.value}:{key.bot}:{key.user}" + "}:held"


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A held message as the dev phone and logs show it."""

    ref: str
    purpose: str
    release_at: datetime
    reason: str
    zone: str
    preview: str

    def until(self) -> str:
        """``until 08:00 America/New_York (Tue Mar 3)``."""
        return until_text(self.release_at, self.zone)


class QuietGate:
    """Applies :class:`~bot.quiet_hours.QuietHoursPolicy` to a send request."""

    def __init__(self, *, policy: QuietHoursPolicy, store: ConversationStore, records: Records,
                 book: AppointmentBook | None, clock: Clock, metrics: Metrics,
                 sink: Callable[[SendRequest, Hold], Awaitable[None]] | None = None) -> None:
        self.policy = policy
        self.store = store  # conversations: a known time zone
        self.records = records  # the held list per conversation
        self.book = book
        self.clock = clock
        self.metrics = metrics
        # Where a held request goes (the outbox's submit_held; build_outbound passes it); None: nothing is held.
        self.sink = sink

    def bot_started(self, request: SendRequest) -> bool:
        """Whether quiet hours apply: everything but a prompt answer, a compliance reply or a staff alert."""
        if request.compliance or request.purpose in NEVER_HELD:
            return False
        if request.purpose != "reply":
            return True
        if request.last_inbound_at is None:
            return False
        late = self.policy.config.late_answer_minutes * 60
        return self.clock.timestamp() - request.last_inbound_at > late

    async def plan(self, request: SendRequest) -> Hold | None:
        """The hold ``request`` would get now (None: it may go); records nothing."""
        if not self.bot_started(request):
            return None
        key = request.key
        now = self.clock.now()
        zone = self.policy.zone_for(key.user, known=await self._known_zone(key),
                                    local_patient=await self._local_patient(key, now))
        return self.policy.hold(user=key.user, channel=key.channel.value, now=now, zone=zone)

    async def check(self, request: SendRequest) -> Hold | None:
        """None when the request may go now; else the hold (already recorded and scheduled)."""
        if self.sink is None:
            return None
        hold = await self.plan(request)
        if hold is None:
            await self._forget(request)
            return None
        await self.record(request, hold)
        await self.sink(request, hold)
        log.info("message held for quiet hours", extra={"fields": {
            "user": mask_phone(request.key.user), "purpose": request.purpose, "reason": hold.reason,
            "release_at": hold.release_at.isoformat(), "zone": hold.zone}})
        return hold

    async def held(self, key: ConversationKey) -> list[HeldMessage]:
        """The messages held for one conversation, soonest first."""
        raw = await self.records.get(held_key(key))
        items = json.loads(raw) if raw else {}
        out = [HeldMessage(ref=ref, purpose=v["purpose"], release_at=datetime.fromtimestamp(v["release"], UTC),
                           reason=v["reason"], zone=v["zone"], preview=v["preview"]) for ref, v in items.items()]
        return sorted(out, key=lambda h: h.release_at)

    async def _known_zone(self, key: ConversationKey) -> str | None:
        state = await self.store.load(key)
        zone = state.data.get("timezone") if state is not None else None
        return zone if isinstance(zone, str) else None

    async def _local_patient(self, key: ConversationKey, now: datetime) -> bool:
        # A patient with an appointment comes in person: the business's zone is theirs.
        return self.book is not None and bool(await self.book.upcoming_for(key, now=now))

    async def record(self, request: SendRequest, hold: Hold) -> None:
        """Remember a hold (the dev phone lists it) and count it once per message."""
        ref = ref_for(request.idempotency_key)
        name = held_key(request.key)
        raw = await self.records.get(name)
        items = json.loads(raw) if raw else {}
        first = ref not in items
        items[ref] = {"purpose": request.purpose, "release": hold.release_at.timestamp(), "reason": hold.reason,
                      "zone": hold.zone, "preview": _preview(request)}
        ttl = max(hold.release_at.timestamp() - self.clock.timestamp(), 0) + HELD_TTL_MARGIN
        await self.records.set(name, json.dumps(items), ttl=ttl)
        if first:  # a message re-held at its release (clock skew) is counted once
            self.metrics.outbound_held.labels(hold.reason).inc()

    async def _forget(self, request: SendRequest) -> None:
        name = held_key(request.key)
        raw = await self.records.get(name)
        if not raw:
            return
        items = json.loads(raw)
        if items.pop(ref_for(request.idempotency_key), None) is None:
            return
        if items:
            await self.records.set(name, json.dumps(items), ttl=HELD_TTL_MARGIN * 4)
        else:
            await self.records.delete(name)


def _preview(request: SendRequest) -> str:
    if request.template is not None:
        return f"[template {request.template.name}]"
    return request.body[:80]

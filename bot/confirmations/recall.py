"""Recall: one invitation to book when a patient's last completed visit of a service is old.

Off by default (``recall:`` in ``business.yaml``). :meth:`Recall.run` (the
worker's cron; ``run: recall`` in a transcript) looks at the completed visits
of ``service`` on the days ``after_days`` (to ``after_days`` + :data:`LOOKBACK_DAYS`)
ago, and invites the patient unless:

- they came back since or have an upcoming appointment (``came_back``);
- there is no **marketing consent** in the consent ledger: an ``opt_in``
  with source ``marketing`` on the channel, not followed by an opt-out
  (``no_consent``; reminders need no such consent, invitations do);
- they opted out or are unreachable.

One invitation per visit (idempotency key ``recall:<appointment id>``),
throttled like broadcasts: queued ``1 / rate_per_second`` seconds apart, in
the language of the patient's conversation (:mod:`bot.languages.recipients`).

Example::

    recall = Recall(parts, ledger=ledger, hasher=hasher)     # parts: bot.confirmations.after_visit.PatientMessaging
    await recall.run()      # RecallRun(queued=3, skipped={"no_consent": 5})
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final

from bot.appointments import Appointment
from bot.compliance.ledger import AddressHasher, ConsentLedger
from bot.confirmations.after_visit import PatientMessaging
from bot.confirmations.marketing import has_marketing_consent
from bot.confirmations.status import Status
from bot.outbound.models import SendRequest

log = logging.getLogger("bot.confirmations.recall")

RECALL_TEMPLATE: Final = "recall_invite"
#: How many days of visits each run looks at (a worker down for a while still invites).
LOOKBACK_DAYS: Final = 3


@dataclass(frozen=True, slots=True)
class RecallRun:
    """What one run did."""

    queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


class Recall:
    """Invites patients due for their next visit, with consent, at a broadcast's pace."""

    def __init__(self, parts: PatientMessaging, *, ledger: ConsentLedger | None, hasher: AddressHasher) -> None:
        self.book, self.outbox, self.suppressions = parts.book, parts.outbox, parts.suppressions
        self.clock, self.business = parts.clock, parts.business
        self.templates, self.metrics = parts.templates, parts.metrics
        self.recipients = parts.recipients
        if self.business.recall.enabled:  # sent on its own: a missing language's variant stops start-up
            self.templates.check_languages([RECALL_TEMPLATE], self.recipients.codes)
        self.ledger = ledger
        self.hasher = hasher

    async def run(self) -> RecallRun:
        """Queue the invitations due now (nothing when recall is off)."""
        wanted = self.business.recall
        if not wanted.enabled or RECALL_TEMPLATE not in self.templates:
            return RecallRun()
        now = self.clock.now()
        today = now.astimezone(self.business.tz).date()
        queued = 0
        skipped: Counter[str] = Counter()
        for back in range(LOOKBACK_DAYS):
            day = today - timedelta(days=wanted.after_days + back)
            for visit in await self.book.on_date(day):
                if visit.status != Status.COMPLETED or visit.service != wanted.service:
                    continue
                reason = await self._reason_to_skip(visit)
                if reason is not None:
                    skipped[reason] += 1
                    continue
                # Throttled like broadcasts: one every 1 / rate seconds.
                await self.outbox.submit(await self.request(visit), delay=queued / wanted.rate_per_second)
                queued += 1
        if queued or skipped:
            log.info("recall invitations queued", extra={"fields": {"queued": queued, **skipped}})
        self.metrics.jobs.labels("recall", "ok").inc()
        return RecallRun(queued=queued, skipped=dict(skipped))

    async def _reason_to_skip(self, visit: Appointment) -> str | None:
        later = await self.book.later_than(visit)
        if any(a.upcoming or (a.status == Status.COMPLETED and a.service == visit.service) for a in later):
            return "came_back"
        if not await has_marketing_consent(self.ledger, self.hasher, visit.key):
            return "no_consent"
        return await self.suppressions.reason(visit.key)

    async def request(self, visit: Appointment) -> SendRequest:
        """The invitation for ``visit``'s patient, in their conversation's language."""
        speaking = await self.recipients.speaking(visit.key, self.business)
        variables = {"name": speaking.name(visit.name), "service": speaking.service(visit.service)}
        return SendRequest(key=visit.key, template=speaking.template(RECALL_TEMPLATE, variables), purpose="recall",
                           idempotency_key=f"recall:{visit.id}")

"""The day after a visit: thanks and the review link after a completed one, "we missed you" after a no-show.

Both optional (``after_visit:`` in ``business.yaml``, docs/confirmations.md).
:meth:`AfterVisit.run` (the worker's cron; ``run: after_visit`` in a
transcript) looks at the appointments of the last :data:`LOOKBACK_DAYS`
business-local days whose next-day ``send_at`` has passed:

- ``completed`` with ``follow_up: true``: the ``visit_follow_up`` content
  template (name, service, review link) — never after a no-show;
- ``no-show`` with ``no_show: true``: the ``visit_missed`` template ("we
  missed you, want a new time?"; a *Book a new time* button on WhatsApp);
- anything else (booked, confirmed, cancelled): nothing.

Both in the language of the patient's conversation (its template's variant,
the service's name in that language: :mod:`bot.languages.recipients`).

Once per visit: the idempotency keys ``followup:<id>`` / ``missed:<id>`` (the
sender's ledger), so runs every few minutes send nothing twice. Opted-out and
unreachable patients are skipped here and refused by the sender; the sender's
quiet-hours gate and WhatsApp window (the template) apply as to reminders.

Example::

    parts = PatientMessaging(book=book, outbox=outbox, suppressions=suppressions, clock=clock, business=business,
                             templates=templates, metrics=metrics)
    job = AfterVisit(parts)
    await job.run()     # AfterVisitRun(follow_ups=2, missed=1, skipped={})
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from bot.appointments import Appointment, AppointmentBook
from bot.business import Business
from bot.clock import Clock
from bot.confirmations.status import Status
from bot.languages.recipients import ONE_LANGUAGE, RecipientLanguages
from bot.observability import Metrics
from bot.outbound.models import SendRequest
from bot.outbound.outbox import Outbox
from bot.outbound.suppression import Suppressions
from bot.outbound.templates import ContentTemplates

log = logging.getLogger("bot.confirmations.after_visit")

FOLLOW_UP_TEMPLATE: Final = "visit_follow_up"
MISSED_TEMPLATE: Final = "visit_missed"
#: How many past days each run looks at: a worker down for a day still sends the next.
LOOKBACK_DAYS: Final = 2


@dataclass(frozen=True, slots=True)
class AfterVisitRun:
    """What one run queued."""

    follow_ups: int = 0
    missed: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PatientMessaging:
    """What the after-visit and recall jobs work with: the book, the outbox and its checks, the business."""

    book: AppointmentBook
    outbox: Outbox
    suppressions: Suppressions
    clock: Clock
    business: Business
    templates: ContentTemplates
    metrics: Metrics
    #: Which language each message speaks: the patient's conversation's.
    recipients: RecipientLanguages = ONE_LANGUAGE


class AfterVisit:
    """Queues the follow-ups and no-show messages whose time came."""

    def __init__(self, parts: PatientMessaging) -> None:
        self.book, self.outbox, self.suppressions = parts.book, parts.outbox, parts.suppressions
        self.clock, self.business = parts.clock, parts.business
        self.templates, self.metrics = parts.templates, parts.metrics
        self.recipients = parts.recipients
        # Sent on its own, so in every language of the business: a missing variant stops start-up.
        wanted = self.business.after_visit
        sent = [name for name, on in ((FOLLOW_UP_TEMPLATE, wanted.follow_up), (MISSED_TEMPLATE, wanted.no_show)) if on]
        self.templates.check_languages(sent, self.recipients.codes)

    async def run(self) -> AfterVisitRun:
        """Queue what is due now (nothing when both are off)."""
        wanted = self.business.after_visit
        if not (wanted.follow_up or wanted.no_show):
            return AfterVisitRun()
        now = self.clock.now()
        tz = self.business.tz
        today = now.astimezone(tz).date()
        sent: Counter[str] = Counter()
        skipped: Counter[str] = Counter()
        for back in range(1, LOOKBACK_DAYS + 1):
            day = today - timedelta(days=back)
            if now < datetime.combine(day + timedelta(days=1), wanted.send_at, tz):
                continue
            for appt in await self.book.on_date(day):
                request = await self.request(appt)
                if request is None:
                    continue
                reason = await self.suppressions.reason(request.key)
                if reason is not None:
                    skipped[reason] += 1
                    continue
                await self.outbox.submit(request)
                sent[appt.status.value] += 1
        if sent or skipped:
            log.info("after-visit messages queued", extra={"fields": {**sent, **skipped}})
        self.metrics.jobs.labels("after_visit", "ok").inc()
        return AfterVisitRun(follow_ups=sent[Status.COMPLETED.value], missed=sent[Status.NO_SHOW.value],
                             skipped=dict(skipped))

    async def request(self, appt: Appointment) -> SendRequest | None:
        """The message ``appt`` gets the day after, if any, in the patient's language."""
        wanted = self.business.after_visit
        follow_up = appt.status == Status.COMPLETED and wanted.follow_up and FOLLOW_UP_TEMPLATE in self.templates
        missed = appt.status == Status.NO_SHOW and wanted.no_show and MISSED_TEMPLATE in self.templates
        if not (follow_up or missed):
            return None
        speaking = await self.recipients.speaking(appt.key, self.business)
        variables = {"name": speaking.name(appt.name), "service": speaking.service(appt.service)}
        if follow_up:
            template = speaking.template(FOLLOW_UP_TEMPLATE, {**variables, "review_link": wanted.review_link or ""})
            return SendRequest(key=appt.key, template=template, purpose="followup",
                               idempotency_key=f"followup:{appt.id}")
        return SendRequest(key=appt.key, template=speaking.template(MISSED_TEMPLATE, variables),
                           purpose="followup", idempotency_key=f"missed:{appt.id}")

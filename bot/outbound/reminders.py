"""Appointment reminders, on the schedule of ``reminders:`` in ``business.yaml`` (else one,
``REMINDER_LEAD_HOURS`` before each start).

The shipped schedule is 48 h before and, only to patients who have not
confirmed (bot/confirmations), 3 h before. Each step of the schedule runs as
below with a cursor of its own; the first step keeps the original cursor
and idempotency keys, later steps add their lead (``...:<minutes>m``).
Every reminder queued is noted on the appointment, so a reply ("C",
"can't make it") is read against the latest one.

The worker runs :meth:`Reminders.run` every minute (``runtime.jobs["reminders"]``
runs it on demand: ``run: reminders`` in a transcript). Each run covers the
appointments starting in ``(cursor, now + lead]`` and moves the cursor to
``now + lead``, so:

- every appointment booked earlier than ``lead`` ahead is reminded once,
  when its reminder time passes, even if the worker was down meanwhile;
- an appointment booked less than ``lead`` ahead gets no "tomorrow" reminder
  (the booking confirmation just told them); the very first run covers
  ``(now, now + lead]``;
- a run repeated or overlapping (two workers, a crash) sends nothing twice:
  the idempotency key is ``reminder:<appointment id>:<start>``, so a moved
  appointment is reminded of its new time, and never twice of one time.

On WhatsApp the ``appointment_reminder`` content template goes out (name,
service, time); on SMS its text fallback. Both in the language of the
recipient's conversation (:mod:`bot.languages.recipients`): a Spanish
conversation gets the template's ``es:`` variant, with the service's Spanish
name and the time as Spanish writes it. Opted-out and unreachable users
are skipped here and refused again by the sender.

Example::

    reminders = Reminders(book=book, outbox=outbox, suppressions=suppressions, store=store,
                          clock=clock, lead=timedelta(hours=24), business=business, metrics=metrics)
    run = await reminders.run()
    run.queued, run.skipped   # 3, {"opted_out": 1}
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

from bot.appointments import Appointment, AppointmentBook
from bot.business import Business
from bot.clock import Clock
from bot.confirmations.schedule import ReminderStep
from bot.confirmations.status import Status
from bot.contacts.store import ContactBook
from bot.languages.recipients import ONE_LANGUAGE, RecipientLanguages
from bot.messages import Channel
from bot.observability import Metrics, mask_phone
from bot.outbound.models import SendRequest
from bot.outbound.outbox import Outbox
from bot.outbound.suppression import Suppressions
from bot.outbound.templates import ContentTemplates
from bot.quiet_hours import QuietHoursPolicy
from bot.storage.base import ConversationKey
from bot.storage.jobs import JobStore

log = logging.getLogger("bot.outbound.reminders")

REMINDER_TEMPLATE: Final = "appointment_reminder"
CURSOR_KEY: Final = "reminders:cursor"
#: How far past the horizon a reminder can have moved earlier (the longest quiet span, a closed day included).
EARLY_LOOKAHEAD: Final = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class ReminderRun:
    """What one run did."""

    due: int = 0
    queued: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


class Reminders:
    """Finds appointments whose reminder time passed and queues their reminders."""

    def __init__(
        self,
        *,
        book: AppointmentBook,
        outbox: Outbox,
        suppressions: Suppressions,
        store: JobStore,
        clock: Clock,
        lead: timedelta,
        templates: ContentTemplates,
        metrics: Metrics,
        business: Business | None = None,
        quiet: QuietHoursPolicy | None = None,
        contacts: ContactBook | None = None,
        schedule: Sequence[ReminderStep] = (),
        recipients: RecipientLanguages = ONE_LANGUAGE,
    ) -> None:
        #: (lead, only when unconfirmed) per reminder: ``schedule`` (business.yaml's ``reminders:``), else ``lead``.
        self.schedule: tuple[tuple[timedelta, bool], ...] = (
            tuple((s.lead, s.unless_confirmed) for s in schedule) if schedule else ((lead, False),))
        self.book = book
        self.outbox = outbox
        self.suppressions = suppressions
        self.store = store
        self.clock = clock
        self.lead = lead
        self.templates = templates
        self.metrics = metrics
        self.business = business
        self.quiet = quiet
        self.contacts = contacts
        #: Which language each reminder speaks: its recipient's conversation's.
        self.recipients = recipients
        # Sent on its own, so in every language of the business: a missing variant stops start-up.
        templates.check_languages([REMINDER_TEMPLATE], recipients.codes)

    async def run(self) -> ReminderRun:
        """Queue the reminders that came due since the last run, for every step of the schedule."""
        if REMINDER_TEMPLATE not in self.templates:
            log.error("no %r content template registered; reminders are off", REMINDER_TEMPLATE)
            return ReminderRun()
        total = ReminderRun()
        for index, (lead, unless_confirmed) in enumerate(self.schedule):
            run = await self._run_step(index, lead, unless_confirmed)
            merged = Counter(total.skipped)
            merged.update(run.skipped)
            total = ReminderRun(due=total.due + run.due, queued=total.queued + run.queued, skipped=dict(merged))
        self.metrics.jobs.labels("reminders", "ok").inc()
        return total

    async def _run_step(self, index: int, lead: timedelta, unless_confirmed: bool) -> ReminderRun:
        now = self.clock.now()
        horizon = now + lead
        cursor = CURSOR_KEY if index == 0 else f"{CURSOR_KEY}:{int(lead.total_seconds())}"
        raw = await self.store.get(cursor)
        start = datetime.fromtimestamp(float(raw), UTC) if raw else now
        if start >= horizon:
            return ReminderRun()
        due = [a for a in await self.book.due_between(start, horizon) if a.start > max(now, start)]
        due += await self._moved_earlier(now, horizon, lead)
        queued = 0
        skipped: Counter[str] = Counter()
        suffix = "" if index == 0 else f":{int(lead.total_seconds() // 60)}m"
        for appt in due:
            if unless_confirmed and appt.status == Status.CONFIRMED:
                skipped["confirmed"] += 1
                continue
            sent = False
            for request in await self.requests(appt, suffix=suffix):
                reason = await self.suppressions.reason(request.key)
                if reason is not None:
                    skipped[reason] += 1
                    continue
                await self.outbox.submit(request)
                queued += 1
                sent = True
            if sent:
                await self.book.note_reminder(appt, at=now)
        # Only after queueing: a run that dies midway is redone, and the
        # idempotency keys keep the redo from sending twice.
        await self.store.set(cursor, repr(horizon.timestamp()))
        if due:
            log.info("reminders queued", extra={"fields": {"due": len(due), "queued": queued,
                                                           "lead_minutes": int(lead.total_seconds() // 60),
                                                           **skipped}})
        return ReminderRun(due=len(due), queued=queued, skipped=dict(skipped))

    def send_time(self, appt: Appointment, lead: timedelta | None = None) -> datetime:
        """When ``appt``'s reminder goes: ``lead`` (default: the first step's) before it, or earlier when
        that falls in quiet hours (the last allowed minute before it, in the business's zone: reminders go
        to its patients)."""
        at = appt.start - (self.schedule[0][0] if lead is None else lead)
        if self.quiet is None:
            return at
        zone = self.business.tz if self.business is not None else None
        return self.quiet.latest_allowed_before(user=appt.user, channel=appt.key.channel.value, moment=at,
                                                zone=zone)

    async def _moved_earlier(self, now: datetime, horizon: datetime, lead: timedelta) -> list[Appointment]:
        # Appointments beyond the horizon whose reminder moved out of quiet hours to before now.
        if self.quiet is None:
            return []
        later = await self.book.due_between(horizon, horizon + EARLY_LOOKAHEAD)
        return [a for a in later if a.start > horizon and self.send_time(a, lead) <= now]

    async def requests(self, appt: Appointment, *, suffix: str = "") -> list[SendRequest]:
        """The reminders for ``appt``: the patient's own (unless a verified contact replaces it) and one per
        verified reminder contact (docs/staff-email.md), each with its own idempotency key."""
        if self.contacts is None:
            return [await self.request(appt, suffix=suffix)]
        own, contacts = await self.contacts.reminder_numbers_of(appt.key)
        mine = [await self.request(appt, suffix=suffix)] if own else []
        return mine + [await self.request(appt, to=ConversationKey(Channel(c.channel), appt.bot, c.number),
                                          suffix=suffix)
                       for c in contacts]

    async def request(self, appt: Appointment, *, to: ConversationKey | None = None, suffix: str = "") -> SendRequest:
        """The reminder for ``appt`` (to its patient, or to ``to``, a verified contact), in their language."""
        key = to or appt.key
        speaking = await self.recipients.speaking(key, self.business)
        variables = {
            "name": speaking.name(appt.name),
            "service": speaking.service(appt.service),
            "time": speaking.when(appt.start),  # as the Brain writes times in that language
        }
        log.debug("reminder", extra={"fields": {"appointment": appt.id, "user": mask_phone(appt.user),
                                                "language": speaking.code}})
        contact = "" if to is None else f":{to.user}"
        return SendRequest(
            key=key, template=speaking.template(REMINDER_TEMPLATE, variables), purpose="reminder",
            idempotency_key=f"reminder:{appt.id}:{int(appt.start.timestamp())}{suffix}{contact}",
        )

"""Staff email: turn a :class:`~bot.mail.events.StaffEvent` into one sent email.

Runs in the worker (``email`` job). It gathers what staff need when the
email is built, not on the webhook path: the patient's upcoming
appointments, the day's activity for a digest (the last turns come with the
event, masked). One email per event: a
record ``mail:sent:{<event id>}`` is written after SendGrid accepted it, and
an event already recorded is skipped (a retried job, a second worker).

Example::

    mail = StaffMail(composer=composer, sender=sender, records=stores.ledger, appointments=book,
                     activity=activity, business=business, to=("staff@clinic.example",), counter=metrics.emails)
    await mail.deliver(StaffEvent.handoff(key, reason="asked", message_sid="SM1", at=now), now=now)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol

from bot.business import Business
from bot.confirmations.figures import figures_between
from bot.flows.when import fmt_when
from bot.mail.activity import ActivityLog
from bot.mail.compose import StaffMailComposer, mask_contacts
from bot.mail.events import StaffEvent, handoff_reason
from bot.mail.message import EmailSender, EmailSendError
from bot.observability import mask_phone
from bot.storage import ConversationKey

log = logging.getLogger("bot.mail")

#: An event's "sent" record outlives any retry of its job.
SENT_TTL_SECONDS: Final = 7 * 24 * 3600
#: Turns of the conversation shown in a hand-off email.
TURNS_SHOWN: Final = 8


class Records(Protocol):
    async def get(self, key: str) -> str | None: ...

    async def set(self, key: str, value: str, *, ttl: float | None = None, only_if_absent: bool = False) -> bool:
        ...


class UpcomingAppointments(Protocol):
    async def upcoming_for(self, key: ConversationKey, *, now: datetime) -> list[Any]: ...

    async def on_date(self, day: date, *, status: Any = None) -> Sequence[Any]:
        """A day's appointments, every status (the digest's figures)."""
        ...


class Counter(Protocol):
    def labels(self, *values: str) -> Any: ...


def sent_key(event_id: str) -> str:
    return "mail:sent:{" + event_id + "}"


@dataclass
class StaffMail:
    """Builds and sends staff emails; see the module docstring."""

    composer: StaffMailComposer
    sender: EmailSender
    records: Records
    appointments: UpcomingAppointments
    activity: ActivityLog
    business: Business
    to: tuple[str, ...]
    counter: Counter

    async def deliver(self, event: StaffEvent, *, now: datetime) -> str:
        """Send ``event``'s email once: ``sent``, or ``duplicate`` when it was sent before.

        Raises :class:`~bot.mail.message.EmailSendError` (``retryable`` for 429/5xx/network).
        """
        if await self.records.get(sent_key(event.event_id)):
            self.counter.labels("duplicate").inc()
            return "duplicate"
        context = await self._context(event, now)
        message = self.composer.compose(event.kind, event_id=event.event_id, to=self.to, **context)
        try:
            await self.sender.send(message)
        except EmailSendError as exc:
            result = "retry" if exc.retryable else "failed"
            self.counter.labels(result).inc()
            log.warning("staff email not sent", extra={"fields": {
                "event": event.kind, "status": exc.status, "retryable": exc.retryable}})
            raise
        await self.records.set(sent_key(event.event_id), now.isoformat(), ttl=SENT_TTL_SECONDS)
        self.counter.labels("sent").inc()
        log.info("staff email sent", extra={"fields": {"event": event.kind, "to": len(self.to)}})
        return "sent"

    def _when(self, moment: datetime) -> str:
        return fmt_when(moment, self.business.tz)  # as the bot writes times to patients

    def _service(self, name: str) -> str:
        found = self.business.service(name)
        return found.label if found is not None else name

    async def _appointments(self, key: ConversationKey, now: datetime) -> list[dict[str, str]]:
        found = await self.appointments.upcoming_for(key, now=now)
        return [{"when": self._when(a.start), "service": self._service(a.service)} for a in found]

    async def _figures(self, day: date) -> list[dict[str, Any]]:
        """Confirmation and no-show rates (bot/confirmations/figures.py): the day, and the week to it."""
        spans = ((f"Appointments on {day.isoformat()}", day), ("The last 7 days", day - timedelta(days=6)))
        return [{"title": title, "lines": (await figures_between(self.appointments, first, day)).lines()}
                for title, first in spans]

    async def _context(self, event: StaffEvent, now: datetime) -> dict[str, Any]:
        at = self._when(datetime.fromisoformat(event.at))
        base: dict[str, Any] = {"business": self.business, "at": at}
        if event.kind == "digest":
            day = date.fromisoformat(event.day)
            return {**base, "day": event.day, "sections": await self.activity.sections(day),
                    "figures": await self._figures(day)}
        key = event.key
        patient = {"number": mask_phone(key.user), "name": mask_contacts(event.profile_name),
                   "channel": {"sms": "SMS", "whatsapp": "WhatsApp", "voice": "phone call"}.get(
                       key.channel.value, key.channel.value)}
        appointments = await self._appointments(key, now)
        if event.kind == "optout":
            return {**base, "patient": patient, "appointments": appointments}
        customer = self.business.words.customer
        turns = [{"who": customer.capitalize() if who == "user" else "Bot", "text": text}
                 for who, text in event.turns[-TURNS_SHOWN:]]
        hint = (f"call or text the {customer} back from {self.business.phone}; the bot stays quiet while staff "
                "have the conversation. Their full number is in the hand-off text sent to the staff phone.")
        return {**base, "patient": patient, "reason": event.reason,
                "reason_text": handoff_reason(event.reason, self.business.words, event.reason or "hand-off"),
                "turns": turns, "appointments": appointments, "answer_hint": hint}

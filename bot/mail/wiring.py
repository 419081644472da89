"""Builds the staff-email parts from ``Settings`` (the composition root calls this once).

Staff email is on when ``STAFF_EMAIL``, ``SENDGRID_API_KEY`` and
``EMAIL_FROM`` are set; otherwise :func:`build_staff_mail` returns None and
nothing is recorded or queued.

Example::

    stores = Stores.beside(store)
    parts = build_staff_mail(settings, store=store, ledger=stores.ledger, book=brain.book, business=business,
                             clock=clock, metrics=metrics, arq_redis=None)
    if parts:
        await parts.queue.submit(StaffEvent.handoff(key, reason="asked", message_sid="SM1", at=now))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.business import Business
from bot.clock import Clock
from bot.flows.when import fmt_when
from bot.mail.activity import ActivityLog
from bot.mail.compose import StaffMailComposer
from bot.mail.events import StaffEvent, handoff_reason
from bot.mail.queue import ArqEmailQueue, EmailQueue, InlineEmailQueue
from bot.mail.sendgrid_api import SendGridSender
from bot.mail.staff import StaffMail
from bot.memo import fingerprint, memo
from bot.observability import Metrics, mask_phone
from bot.settings import Settings
from bot.storage import ConversationKey


@dataclass
class StaffMailParts:
    """What the web process and the worker use: the mailer, its queue, the day's activity."""

    mail: StaffMail
    queue: EmailQueue
    activity: ActivityLog

    async def handoff(self, key: ConversationKey, *, reason: str, message_sid: str, profile_name: str,
                      at: datetime, turns: tuple[tuple[str, str], ...]) -> None:
        """A conversation went to staff: email them (once per message) and count it for the digest."""
        await self.queue.submit(StaffEvent.handoff(key, reason=reason, message_sid=message_sid,
                                                   profile_name=profile_name, at=at, turns=turns))
        await self.activity.record("handoff", at=at, ident=message_sid,
                                   text=f"{mask_phone(key.user)} ({key.channel.value}): "
                                        f"{handoff_reason(reason, self.mail.business.words)}")

    async def optout(self, key: ConversationKey, *, message_sid: str, at: datetime, has_appointment: bool) -> None:
        """Someone opted out: counted for the digest; emailed at once when they have an upcoming appointment."""
        if has_appointment:
            await self.queue.submit(StaffEvent.optout(key, message_sid=message_sid, at=at))
        await self.activity.record("optout", at=at, ident=message_sid,
                                   text=f"{mask_phone(key.user)} ({key.channel.value})"
                                        + (", has an upcoming appointment" if has_appointment else ""))

    async def appointment_changed(self, change: str, appt: Any, at: datetime) -> None:
        """An appointment-book observer: bookings, reschedules and cancellations for the digest."""
        found = self.mail.business.service(appt.service)
        when = fmt_when(appt.start, self.mail.business.tz)
        label = found.label if found is not None else appt.service
        await self.activity.record(change, at=at, ident=f"{appt.id}:{int(appt.start.timestamp())}",
                                   text=f"{label}, {when}, {mask_phone(appt.user)}")

    async def opted_out(self, key: ConversationKey, event_id: str, at: datetime, has_appointment: bool) -> None:
        """An opt-out observer (:class:`bot.compliance.Compliance`): see :meth:`optout`."""
        await self.optout(key, message_sid=event_id, at=at, has_appointment=has_appointment)

    async def close(self) -> None:
        close = getattr(self.queue, "close", None)
        if close is not None:
            await close()


def build_staff_mail(
    settings: Settings,
    *,
    store: Any,
    ledger: Any,
    book: Any,
    business: Business,
    clock: Clock,
    metrics: Metrics,
    arq_redis: Any = None,
) -> StaffMailParts | None:
    """The staff-email parts, or None when staff email is not configured."""
    if not settings.staff_email_enabled:
        return None
    assert settings.staff_email and settings.sendgrid_api_key and settings.email_from
    prompts = Path(settings.prompts_dir)
    composer = memo(("email", fingerprint(prompts)), lambda: StaffMailComposer(prompts))
    sender = SendGridSender(
        settings.sendgrid_api_key.get_secret_value(),
        from_email=settings.email_from,
        from_name=f"{business.name} bot",
        host=settings.sendgrid_api_base_url,
    )
    activity = ActivityLog(ledger, tz=business.tz)
    mail = StaffMail(
        composer=composer, sender=sender, records=ledger, appointments=book, activity=activity, business=business,
        to=tuple(a.strip() for a in settings.staff_email.split(",")), counter=metrics.emails,
    )

    async def deliver(event: StaffEvent) -> str:
        return await mail.deliver(event, now=clock.now())

    queue: EmailQueue = (ArqEmailQueue(arq_redis, timeout=settings.redis_timeout_seconds) if arq_redis is not None
                         else InlineEmailQueue(deliver))
    return StaffMailParts(mail=mail, queue=queue, activity=activity)

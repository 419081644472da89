"""The worker's staff-email jobs: ``email`` (one event) and the ``digest`` cron.

``email`` sends one event's email; SendGrid's 429/5xx (and network errors)
raise arq's ``Retry`` with growing delays, a 4xx ends the job (logged and
counted as ``failed``), so a bad key never loops. ``digest`` runs every
minute and queues the day's digest once, at ``DIGEST_TIME`` in the
business's time zone (its event id is the day, so a second worker or a rerun
queues nothing new).

Example (how the worker calls them)::

    await email_job({"staff_mail": mail, "clock": clock, "job_try": 1}, event.to_dict())
    await digest_job({"staff_mail": mail, "email_queue": queue, "clock": clock, "settings": settings})
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Final

from arq import Retry

from bot.mail.events import StaffEvent
from bot.mail.message import EmailSendError
from bot.mail.queue import EMAIL_RETRY_DELAYS, EmailQueue
from bot.mail.staff import StaffMail

JOB_DIGEST: Final = "digest"
#: Tries of one email job: the first plus one per retry delay.
EMAIL_MAX_TRIES: Final = len(EMAIL_RETRY_DELAYS) + 1


async def email_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Send one staff event's email: ``sent``, ``duplicate``, ``failed:<status>`` or ``off``."""
    mail: StaffMail | None = ctx.get("staff_mail")
    if mail is None:
        return "off"
    job_try = int(ctx.get("job_try", 1))
    try:
        return await mail.deliver(StaffEvent.from_dict(payload), now=ctx["clock"].now())
    except EmailSendError as exc:
        if not exc.retryable:
            return f"failed:{exc.status}"
        if job_try >= EMAIL_MAX_TRIES:
            mail.counter.labels("failed").inc()
            return f"failed:{exc.status or 'network'}"
        raise Retry(defer=EMAIL_RETRY_DELAYS[job_try - 1]) from exc


def digest_due(now: datetime, at: str, tz: Any) -> bool:
    """Whether ``now`` is in the minute of ``at`` ("18:00") in zone ``tz``.

    >>> from zoneinfo import ZoneInfo
    >>> digest_due(datetime(2026, 3, 2, 23, 0, 30, tzinfo=ZoneInfo("UTC")), "18:00", ZoneInfo("America/New_York"))
    True
    """
    local = now.astimezone(tz)
    hour, minute = (int(part) for part in at.split(":"))
    return (local.hour, local.minute) == (hour, minute) or local.time() == time(hour, minute)


async def queue_digest(mail: StaffMail, queue: EmailQueue, now: datetime) -> StaffEvent:
    """Queue the digest of ``now``'s local day (idempotent per day)."""
    day = now.astimezone(mail.business.tz).date().isoformat()
    event = StaffEvent.digest(day, at=now)
    await queue.submit(event)
    return event


async def digest_job(ctx: dict[str, Any]) -> str:
    """Every minute: at ``DIGEST_TIME`` local, queue the day's digest."""
    mail: StaffMail | None = ctx.get("staff_mail")
    settings = ctx["settings"]
    if mail is None or not settings.digest_time:
        return "off"
    now = ctx["clock"].now()
    if not digest_due(now, settings.digest_time, mail.business.tz):
        return "not yet"
    event = await queue_digest(mail, ctx["email_queue"], now)
    return f"queued {event.day}"

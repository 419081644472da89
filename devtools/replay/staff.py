"""What staff do, as jobs a transcript can run: ``run: staff:completed`` and so on.

In production staff mark a visit with ``bot appointments mark ID STATUS``
and record marketing consent with ``bot appointments recall-consent NUMBER``
(docs/confirmations.md). A transcript has no appointment ids, so replay adds
these jobs to each conversation's app:

- ``staff:completed``, ``staff:no-show``, ``staff:cancelled``: mark the
  conversation's latest appointment (by start), as staff would;
- ``staff:marketing-consent``: record the texter's marketing consent.

Example (a transcript)::

    - advance: 3h
    - run: "staff:completed"
    - advance: 1d
    - run: after_visit
      expect: {template: visit_follow_up}
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.confirmations.marketing import record_marketing_consent
from bot.confirmations.status import Source, Status
from bot.errors import BotError
from bot.storage.base import ConversationKey


def staff_jobs(services: Any, key: ConversationKey) -> dict[str, Callable[[], Awaitable[Any]]]:
    """The staff jobs for the conversation ``key`` of a replay app (its ``services``)."""
    reminders = services.outbound.reminders

    def mark(status: Status) -> Callable[[], Awaitable[Any]]:
        async def job() -> Any:
            found = await reminders.book.booked_by(key)
            if not found:
                raise BotError("staff: the conversation has no appointment to mark")
            return await reminders.book.set_status(found[-1], status, now=services.clock.now(), source=Source.STAFF)

        return job

    async def consent() -> Any:
        if services.consent_ledger is None:
            raise BotError("staff: this app has no consent ledger")
        return await record_marketing_consent(services.consent_ledger, services.engine.compliance.hasher, key,
                                              at=services.clock.now(), note="recorded in a transcript")

    jobs: dict[str, Callable[[], Awaitable[Any]]] = {
        f"staff:{status.value}": mark(status) for status in (Status.COMPLETED, Status.NO_SHOW, Status.CANCELLED)}
    jobs["staff:marketing-consent"] = consent
    return jobs

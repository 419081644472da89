"""How a staff event reaches the worker: the job queue (arq) or, without
Redis, an in-process task with the same retries.

The job id is the event id, so an event queued twice (a retried turn) is one
job; the email itself is also recorded as sent (:mod:`bot.mail.staff`).
Retries: 429, 5xx and network errors after growing delays; 4xx never.

Example::

    queue = ArqEmailQueue(arq_redis)           # web process: hand the event to the worker
    await queue.submit(StaffEvent.handoff(key, reason="asked", message_sid="SM1", at=now))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Protocol

from arq.connections import ArqRedis

from bot.mail.events import StaffEvent
from bot.mail.message import EmailSendError
from bot.storage.queue import enqueue

log = logging.getLogger("bot.mail")

JOB_EMAIL: Final = "email"
#: Delays before each retry of a retryable failure (seconds).
EMAIL_RETRY_DELAYS: Final = (5.0, 30.0, 120.0, 600.0)


class EmailQueue(Protocol):
    """Hands a staff event to whoever sends its email."""

    async def submit(self, event: StaffEvent) -> None: ...


class ArqEmailQueue:
    """Queue the event as an arq job (``bot worker`` sends it)."""

    def __init__(self, redis: ArqRedis, *, timeout: float = 5.0) -> None:
        self._redis = redis
        self._timeout = timeout

    async def submit(self, event: StaffEvent) -> None:
        """Queue the event's email once; :class:`~bot.errors.StoreError` when Redis cannot take it."""
        await enqueue(self._redis, JOB_EMAIL, event.to_dict(), job_id=f"email:{event.event_id}",
                      within=self._timeout)


class InlineEmailQueue:
    """Without Redis (development): send in a background task, with the same retries."""

    def __init__(self, deliver: Callable[[StaffEvent], Awaitable[str]],
                 *, retry_delays: Sequence[float] = EMAIL_RETRY_DELAYS) -> None:
        self._deliver = deliver
        self._delays = tuple(retry_delays)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    async def submit(self, event: StaffEvent) -> None:
        if event.event_id in self._tasks:
            return
        task = asyncio.create_task(self._run(event))
        self._tasks[event.event_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(event.event_id, None))

    async def _run(self, event: StaffEvent) -> None:
        for delay in (*self._delays, None):
            try:
                await self._deliver(event)
                return
            except EmailSendError as exc:
                if not exc.retryable or delay is None:
                    return
                await asyncio.sleep(delay)
            except Exception:  # a bug must not kill the loop's other tasks
                log.exception("staff email failed")
                return

    async def drain(self) -> None:
        """Wait for the emails in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

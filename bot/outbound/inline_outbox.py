"""The in-process outbox (no Redis: development, the replay runner, tests): asyncio tasks, same semantics.

Example::

    outbox = InlineOutbox()
    outbox.attach(runtime.outbox_jobs)
    await outbox.submit(request)
    await outbox.drain()          # everything pending has run
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from bot.errors import ChannelSendError, StoreError
from bot.messages import InboundMessage
from bot.outbound.errors import SendDeferred
from bot.outbound.models import SendRequest
from bot.outbound.outbox import RETRY_DELAYS, held_job_id, send_job_id, turn_job_id
from bot.outbound.perform import OutboxJobs, exc_retryable, perform_send, perform_turn

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.quiet_hours import Hold



log = logging.getLogger("bot.outbound")



class InlineOutbox:
    """In-process outbox (development and tests): asyncio tasks, same semantics.

    Nothing survives the process, which is why it is only used without
    Redis. Retryable failures are tried again after ``retry_delays``. Its
    jobs run in this process, so it is given them (:meth:`attach`) once the
    composition root has built them: they include the engine, whose handler
    may itself submit to this outbox.

    Example::

        outbox = InlineOutbox(clock=clock)
        outbox.attach(jobs)        # bot.runtime does this
        await outbox.submit(request)
        await outbox.drain()   # everything submitted (and what it submitted) is done
    """

    def __init__(self, *, clock: Clock, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._clock = clock
        self._jobs: OutboxJobs | None = None
        self._retry_delays = tuple(retry_delays)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Set while draining: turn-recovery jobs stop waiting out their delay.
        self._hurry = asyncio.Event()
        # Quiet-hours holds: job id -> (release epoch seconds, request). Released by the
        # runtime's clock (a frozen one in tests and replay: `advance` releases them).
        self._held: dict[str, tuple[float, SendRequest]] = {}
        self._held_timer: asyncio.Task[None] | None = None

    def attach(self, jobs: OutboxJobs) -> None:
        """Run ``jobs`` for what is submitted (called once, by the composition root)."""
        self._jobs = jobs

    @property
    def jobs(self) -> OutboxJobs:
        if self._jobs is None:
            raise RuntimeError("InlineOutbox has no jobs yet: attach(jobs) first (bot.runtime does)")
        return self._jobs

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        self._spawn(send_job_id(request), self._send(request, delay))

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        self._spawn(turn_job_id(message), self._turn(message, delay))

    async def submit_held(self, request: SendRequest, hold: Hold) -> None:
        self._held[held_job_id(request, hold)] = (hold.release_at.timestamp(), request)
        self._arm_timer()

    def release_due(self) -> int:
        """Start the held sends whose release time the clock has reached; how many."""
        now = self._clock.timestamp()
        due = [job_id for job_id, (release, _) in self._held.items() if release <= now]
        for job_id in due:
            _, request = self._held.pop(job_id)
            self._spawn(job_id, self._send(request, 0.0))
        if self._held:
            self._arm_timer()
        return len(due)

    @property
    def held(self) -> int:
        """Sends waiting for quiet hours to end."""
        return len(self._held)

    def _arm_timer(self) -> None:
        # Wall-clock wake-up for a live process; a frozen clock is moved on by drain().
        if self._held_timer is not None and not self._held_timer.done():
            self._held_timer.cancel()
        soonest = min(release for release, _ in self._held.values())
        wait = max(soonest - self._clock.timestamp(), 0.0)
        self._held_timer = asyncio.get_running_loop().create_task(self._wake(wait))

    async def _wake(self, wait: float) -> None:
        await asyncio.sleep(min(wait, 3600.0))
        self.release_due()

    def _spawn(self, job_id: str, work: Coroutine[Any, Any, None]) -> None:
        if job_id in self._tasks:
            work.close()  # queued already: at most one per id, like arq
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._done(job_id, done))

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox task failed", exc_info=task.exception(), extra={"fields": {"job": job_id}})

    async def _send(self, request: SendRequest, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._with_retries(lambda last: perform_send(self.jobs, request, last_try=last))

    async def _turn(self, message: InboundMessage, delay: float) -> None:
        # The delay only gives a live turn time to finish; in one process a
        # drain (the replay runner, tests) can check at once: answered turns
        # are no-ops, and a crashed one is run again now.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), delay)
        await self._with_retries(lambda last: perform_turn(self.jobs, message))

    async def _with_retries(self, run: Callable[[bool], Awaitable[object]]) -> None:
        waits = [*self._retry_delays, None]
        for wait in waits:
            try:
                while True:
                    try:
                        await run(wait is None)
                        return
                    except SendDeferred as deferred:  # its turn comes later: not a try
                        await asyncio.sleep(deferred.delay)
            except (ChannelSendError, StoreError) as exc:
                if wait is None or not exc_retryable(exc):
                    log.warning("outbox job gave up", extra={"fields": {"error": str(exc)}})
                    return
                await asyncio.sleep(wait)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every submitted job (and any job they submit) has finished.

        Sends keep their delays (a broadcast's pace); turn-recovery jobs run
        at once; sends held for quiet hours run once the clock reached their
        release time, and otherwise stay held.
        """
        self._hurry.set()
        try:
            self.release_due()
            while self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
                self.release_due()
        finally:
            self._hurry.clear()

    async def close(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

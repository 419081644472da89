"""The arq job functions ``bot worker`` runs, each a thin shell over shared code.

- ``send`` / ``broadcast``: one :class:`~bot.outbound.models.SendRequest`
  (a broadcast's also counts its campaign outcome);
- ``run_turn``: re-runs an inbound turn whose web process may have died;
- ``handoff_return``: at a hand-off's idle deadline, ends it and says the bot is back;
- ``reminders`` (cron, every minute): queues due appointment reminders.

Every job is idempotent, because arq re-runs a job whose worker crashed:
sends through the ledger (one send per idempotency key), turns through the
engine's exactly-once check, reminders through their idempotency keys.
Retryable failures (20429, 5xx, network, Redis) raise arq's ``Retry`` with
growing delays; after the last try the outcome is recorded as failed. A
broadcast deferred by its pace is no failure: it is queued again for its
slot as a new job that keeps the try count (:func:`paced_job_id`), so a
backlog of any length costs no recipient its tries.

Example (how the worker calls them)::

    await send_job({"runtime": runtime, "job_try": 1}, request.to_dict())
"""

from __future__ import annotations

from typing import Any, Final

from arq import Retry
from arq.connections import ArqRedis

from bot.errors import ChannelSendError, StoreError
from bot.outbound.errors import SendDeferred
from bot.outbound.models import SendRequest, inbound_from_dict
from bot.outbound.outbox import (
    JOB_BROADCAST,
    RETRY_DELAYS,
    handoff_return_from_payload,
    perform_handoff_return,
    perform_send,
    perform_turn,
)
from bot.runtime import Runtime
from bot.storage.queue import enqueue

#: Tries per job: the first plus one per retry delay.
MAX_TRIES = len(RETRY_DELAYS) + 1
#: Separates a broadcast job's id from its deferral count: ``broadcast:<ref>:paced:2``.
PACED: Final = ":paced:"


def _runtime(ctx: dict[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


def _retry(ctx: dict[str, Any], exc: BaseException) -> Retry:
    job_try = int(ctx.get("job_try", 1))
    return Retry(defer=RETRY_DELAYS[min(job_try, len(RETRY_DELAYS)) - 1])


async def send_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Send one request; returns its outcome (``sent``, ``skipped:...``, ``failed:<code>``)."""
    last_try = int(ctx.get("job_try", 1)) >= MAX_TRIES
    try:
        return await perform_send(_runtime(ctx).outbox_jobs, SendRequest.from_dict(payload), last_try=last_try)
    except (ChannelSendError, StoreError) as exc:
        raise _retry(ctx, exc) from exc


def paced_job_id(job_id: str) -> str:
    """The id of a broadcast job's next run after a deferral by its pace.

    One per deferral, counted, so a job re-run after a crash queues the same
    next run (arq keeps one) instead of a second one.

    >>> paced_job_id("broadcast:1f2e"), paced_job_id("broadcast:1f2e:paced:1")
    ('broadcast:1f2e:paced:1', 'broadcast:1f2e:paced:2')
    """
    base, _, count = job_id.partition(PACED)
    return f"{base}{PACED}{int(count or 0) + 1}"


async def broadcast_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """One broadcast recipient: a send at the campaign's pace, its outcome tallied.

    A deferral by the pace (a backlog after worker downtime) is no failed
    try: this run ends (``deferred``) and the same send is queued again for
    its held slot, as the same try (arq's ``_job_try``). arq's ``Retry``
    would count every deferral against the tries, and a long backlog would
    run late recipients out of them: arq drops such a job unsent.
    """
    job_try = int(ctx.get("job_try", 1))
    try:
        return await perform_send(_runtime(ctx).outbox_jobs, SendRequest.from_dict(payload),
                                  last_try=job_try >= MAX_TRIES)
    except SendDeferred as deferred:
        queue: ArqRedis = ctx["redis"]
        try:
            await enqueue(queue, JOB_BROADCAST, payload, job_id=paced_job_id(str(ctx["job_id"])),
                          within=_runtime(ctx).settings.redis_timeout_seconds, defer_by=deferred.delay, job_try=job_try)
        except StoreError as exc:  # not queued again: this run is retried instead
            raise _retry(ctx, exc) from exc
        return "deferred"
    except (ChannelSendError, StoreError) as exc:
        raise _retry(ctx, exc) from exc


async def handoff_return_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Bring the bot back to a conversation whose hand-off went idle (bot/handoff_return.py)."""
    key, at = handoff_return_from_payload(payload)
    try:
        return await perform_handoff_return(_runtime(ctx).outbox_jobs, key, at)
    except (ChannelSendError, StoreError) as exc:
        raise _retry(ctx, exc) from exc


async def run_turn_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """Run an inbound turn if it is still unanswered (``duplicate`` when it was)."""
    runtime = _runtime(ctx)
    try:
        return await perform_turn(runtime.outbox_jobs, inbound_from_dict(payload))
    except StoreError as exc:  # includes a conversation still locked by a slow turn
        if int(ctx.get("job_try", 1)) >= MAX_TRIES:
            runtime.metrics.jobs.labels("run_turn", "failed").inc()
            return "failed"
        raise _retry(ctx, exc) from exc


async def reminders_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """Queue the appointment reminders that came due."""
    run = await _runtime(ctx).require_outbound().reminders.run()
    return {"due": run.due, "queued": run.queued, "skipped": run.skipped}

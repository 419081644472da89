"""The arq job functions ``bot worker`` runs, each a thin shell over shared code.

- ``send`` / ``broadcast``: one :class:`~bot.outbound.models.SendRequest`
  (a broadcast's also counts its campaign outcome);
- ``run_turn``: re-runs an inbound turn whose web process may have died;
- ``reminders`` (cron, every minute): queues due appointment reminders.

Every job is idempotent, because arq re-runs a job whose worker crashed:
sends through the ledger (one send per idempotency key), turns through the
engine's exactly-once check, reminders through their idempotency keys.
Retryable failures (20429, 5xx, network, Redis) raise arq's ``Retry`` with
growing delays; after the last try the outcome is recorded as failed.

Example (how the worker calls them)::

    await send_job({"runtime": runtime, "job_try": 1}, request.to_dict())
"""

from __future__ import annotations

from typing import Any

from arq import Retry

from bot.errors import ChannelSendError, StoreError
from bot.outbound.errors import SendDeferred
from bot.outbound.models import SendRequest, inbound_from_dict
from bot.outbound.outbox import RETRY_DELAYS, perform_send, perform_turn
from bot.runtime import Runtime

#: Tries per job: the first plus one per retry delay.
MAX_TRIES = len(RETRY_DELAYS) + 1
#: A broadcast may also be deferred once by its pace (its slot then held).
BROADCAST_MAX_TRIES = MAX_TRIES + 1


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


async def broadcast_job(ctx: dict[str, Any], payload: dict[str, Any]) -> str:
    """One broadcast recipient: a send at the campaign's pace, its outcome tallied.

    A deferral by the pace (a backlog after worker downtime) reruns the job
    at its held slot; it uses one of arq's tries, which is why broadcasts get
    one more (:data:`BROADCAST_MAX_TRIES`).
    """
    # One try went to a deferral at most: the slot is held across it.
    last_try = int(ctx.get("job_try", 1)) >= BROADCAST_MAX_TRIES
    try:
        return await perform_send(_runtime(ctx).outbox_jobs, SendRequest.from_dict(payload), last_try=last_try)
    except SendDeferred as deferred:
        raise Retry(defer=deferred.delay) from None
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

"""The worker's crons for after-visit messages and recall (``bot worker``; docs/confirmations.md).

Example::

    cron(after_visit_job, name=JOB_AFTER_VISIT, minute=set(range(0, 60, 5)), unique=True)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from bot.runtime import Runtime

JOB_AFTER_VISIT: Final = "after_visit"
JOB_RECALL: Final = "recall"


def _runtime(ctx: dict[str, Any]) -> Runtime:
    runtime: Runtime = ctx["runtime"]
    return runtime


async def after_visit_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """Queue the follow-ups and no-show messages that came due."""
    job = _runtime(ctx).after_visit
    if job is None:
        return {}
    run = await job.run()
    return {"follow_ups": run.follow_ups, "missed": run.missed, "skipped": run.skipped}


async def recall_job(ctx: dict[str, Any]) -> dict[str, Any]:
    """Queue the recall invitations that came due (recall on, with consent)."""
    job = _runtime(ctx).recall
    if job is None:
        return {}
    run = await job.run()
    return {"queued": run.queued, "skipped": run.skipped}

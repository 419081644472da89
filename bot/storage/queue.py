"""Putting a job on arq's queue so that "queued" is true: the one enqueue every producer uses.

arq's ``enqueue_job`` returns ``None`` when a job with the same id is queued
or finished recently, and we rely on that for at-most-once submits. But
redis-py turns a connection lost during the enqueue's ``WATCH``/``EXEC``
transaction into a ``WatchError``, which arq reads the same way: ``None``,
though the job may never have reached Redis (seen in the chaos runs: a
webhook acknowledged a turn whose recovery job a Redis shutdown had
swallowed, and the user's message was never answered). So a ``None`` is
checked: the job (or its result) must be in Redis, or the enqueue is tried
again; when Redis cannot say, :class:`~bot.errors.StoreError` is raised and
the caller does not acknowledge (the webhook answers 503, a job retries).

Example::

    queued = await enqueue(arq_redis, "run_turn", payload, job_id="run_turn:SM1", within=5.0, defer_by=31)
    queued    # True: queued now; False: it was there already
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Final

from arq.connections import ArqRedis
from arq.constants import job_key_prefix, result_key_prefix
from redis.exceptions import RedisError

from bot.errors import StoreError

#: Enqueue attempts when arq answers "already there" but Redis holds no such job.
ATTEMPTS: Final = 3


async def enqueue(
    redis: ArqRedis,
    function: str,
    payload: dict[str, Any],
    *,
    job_id: str,
    within: float,
    defer_by: float | None = None,
    defer_until: datetime | None = None,
    job_try: int | None = None,
) -> bool:
    """Queue ``function(payload)`` as ``job_id``: True when queued now, False when it was there already.

    All attempts together are bounded by ``within`` seconds (a webhook waits for them). Raises
    :class:`~bot.errors.StoreError` when Redis is unreachable, or when it
    never confirms the job.
    """
    try:
        async with asyncio.timeout(within):
            for _ in range(ATTEMPTS):
                job = await redis.enqueue_job(function, payload, _job_id=job_id, _defer_by=defer_by or None,
                                              _defer_until=defer_until, _job_try=job_try)
                if job is not None:
                    return True
                # Either it is really there, or a dropped connection posed as "already there".
                # (One key per command: the project's rule, though the queue is never on a cluster.)
                if await redis.exists(job_key_prefix + job_id) or await redis.exists(result_key_prefix + job_id):
                    return False
    except TimeoutError as exc:
        raise StoreError(f"cannot queue job {function}: no answer within {within:g}s") from exc
    except (RedisError, OSError) as exc:
        raise StoreError(f"cannot queue job {function}: {exc}") from exc
    raise StoreError(f"cannot queue job {function}: Redis did not confirm it after {ATTEMPTS} attempts")

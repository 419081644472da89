"""The production outbox: arq jobs on the bot's Redis, run by ``bot worker``.

Example::

    outbox = ArqOutbox.from_url(settings.redis_url)
    await outbox.submit(request, delay=5)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from arq.connections import ArqRedis
from redis.exceptions import RedisError

from bot.errors import StoreError
from bot.messages import InboundMessage
from bot.observability import mask_phone
from bot.outbound.models import SendRequest, inbound_to_dict
from bot.outbound.outbox import (
    JOB_BROADCAST,
    JOB_RUN_TURN,
    JOB_SEND,
    dumps,
    held_job_id,
    loads,
    send_job_id,
    turn_job_id,
)
from bot.storage.connect import queue_pool

log = logging.getLogger("bot.outbound")

if TYPE_CHECKING:
    from bot.quiet_hours import Hold



class ArqOutbox:
    """The production outbox: arq jobs on the bot's Redis, run by ``bot worker``.

    Example::

        outbox = ArqOutbox.from_url("redis://127.0.0.1:6379/0")
        await outbox.submit(request, delay=2.5)
        await outbox.close()
    """

    def __init__(self, redis: ArqRedis, *, timeout: float = 5.0) -> None:
        self.redis = redis
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> ArqOutbox:
        """``timeout`` bounds each submit (``REDIS_TIMEOUT_SECONDS``): the webhook waits for it."""
        # Lazy: nothing connects until the first job is submitted. A Sentinel
        # URL gives a pool that follows the master across failovers.
        pool = queue_pool(url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 2.0))
        return cls(ArqRedis(pool, job_serializer=dumps, job_deserializer=loads), timeout=timeout)

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        function = JOB_BROADCAST if request.campaign else JOB_SEND
        await self._enqueue(function, request.to_dict(), job_id=send_job_id(request), delay=delay)

    async def submit_held(self, request: SendRequest, hold: Hold) -> None:
        function = JOB_BROADCAST if request.campaign else JOB_SEND
        try:
            await self.redis.enqueue_job(function, request.to_dict(), _job_id=held_job_id(request, hold),
                                         _defer_until=hold.release_at)
        except (RedisError, OSError) as exc:
            raise StoreError(f"cannot queue held send: {exc}") from exc

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        await self._enqueue(JOB_RUN_TURN, inbound_to_dict(message), job_id=turn_job_id(message), delay=delay)
        log.info("turn recovery queued", extra={"fields": {"sid": message.event_id,
                                                           "user": mask_phone(message.user)}})

    async def _enqueue(self, function: str, payload: dict[str, Any], *, job_id: str, delay: float) -> None:
        try:
            # None: a job with this id is queued or finished recently: nothing to do.
            async with asyncio.timeout(self.timeout):
                await self.redis.enqueue_job(function, payload, _job_id=job_id, _defer_by=delay or None)
        except TimeoutError as exc:
            raise StoreError(f"cannot queue job {function}: no answer within {self.timeout:g}s") from exc
        except (RedisError, OSError) as exc:
            raise StoreError(f"cannot queue job {function}: {exc}") from exc

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)

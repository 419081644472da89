"""Queued means queued: a connection lost during arq's enqueue transaction is not "already there".

The failure these pin was seen in the chaos runs: Redis shut down as a
webhook queued a late turn's recovery job, redis-py turned the lost
connection into a ``WatchError``, arq read it as "a job with this id exists"
and returned None, the webhook acknowledged, and the user's message was never
answered. A real redis-server sits behind a proxy that drops the EXEC.
"""

from __future__ import annotations

import pytest
from arq.connections import ArqRedis
from arq.constants import default_queue_name, job_key_prefix

from bot.errors import StoreError
from bot.storage.queue import enqueue
from tests.support.drop_proxy import DropExecProxy

JOB = "run_turn:SM00000000000000000000000000000001"


async def queued(redis_url: str, job_id: str) -> bool:
    redis = ArqRedis.from_url(redis_url)
    try:
        return bool(await redis.exists(job_key_prefix + job_id)) and await redis.zscore(
            default_queue_name, job_id) is not None
    finally:
        await redis.aclose()


async def test_arq_alone_takes_a_dropped_exec_for_a_job_already_queued(redis_url: str, redis_client: object) -> None:
    # Why bot.storage.queue exists: arq's own answer here is "already queued" (None), and nothing is.
    async with DropExecProxy(redis_url, drops=1) as proxy:
        redis = ArqRedis.from_url(proxy.url)
        try:
            assert await redis.enqueue_job("run_turn", {"x": 1}, _job_id=JOB) is None
        finally:
            await redis.aclose()
        assert proxy.dropped == 1
    assert not await queued(redis_url, JOB)


async def test_a_dropped_exec_is_tried_again_and_the_job_is_really_queued(
    redis_url: str, redis_client: object
) -> None:
    async with DropExecProxy(redis_url, drops=1) as proxy:
        redis = ArqRedis.from_url(proxy.url)
        try:
            assert await enqueue(redis, "run_turn", {"x": 1}, job_id=JOB, within=5.0, defer_by=4) is True
        finally:
            await redis.aclose()
        assert proxy.dropped == 1
    assert await queued(redis_url, JOB)


async def test_redis_that_never_takes_the_job_is_a_store_error_not_an_acknowledgment(
    redis_url: str, redis_client: object
) -> None:
    async with DropExecProxy(redis_url, drops=None) as proxy:
        redis = ArqRedis.from_url(proxy.url)
        try:
            with pytest.raises(StoreError, match="did not confirm"):
                await enqueue(redis, "run_turn", {"x": 1}, job_id=JOB, within=5.0)
        finally:
            await redis.aclose()
        assert proxy.dropped >= 3
    assert not await queued(redis_url, JOB)


async def test_a_job_queued_twice_is_one_job(redis_url: str, redis_client: object) -> None:
    redis = ArqRedis.from_url(redis_url)
    try:
        assert await enqueue(redis, "run_turn", {"x": 1}, job_id=JOB, within=5.0) is True
        assert await enqueue(redis, "run_turn", {"x": 2}, job_id=JOB, within=5.0) is False
        assert await redis.zcard(default_queue_name) == 1
    finally:
        await redis.aclose()


async def test_unreachable_redis_is_a_store_error(redis_client: object) -> None:
    from tests.support.redis_server import free_port

    redis = ArqRedis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    try:
        with pytest.raises(StoreError, match="cannot queue job run_turn"):
            await enqueue(redis, "run_turn", {"x": 1}, job_id=JOB, within=2.0)
    finally:
        await redis.aclose()

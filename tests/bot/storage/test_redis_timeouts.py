"""A Redis that stops answering costs a bounded wait and a StoreError, never a hang."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.errors import StoreError
from bot.messages import Channel
from bot.storage import ConversationKey, RedisStore

KEY = ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550123")


async def test_a_silent_redis_fails_the_call_within_the_timeout() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(-1)  # accept, read, never answer

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = RedisStore.from_url(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(StoreError, match=r"no answer within 0\.3s"):
        await store.load(KEY)
    assert time.perf_counter() - started < 2
    server.close()
    await store.close()

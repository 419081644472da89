"""Shared fixtures: a real Redis, settings, apps and Twilio-signed clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from bot.settings import Settings, load_settings
from bot.storage import ConversationStore, RedisStore, Stores
from devtools.webhook_client import WebhookClient
from tests.support.redis_cluster import redis_cluster
from tests.support.redis_server import redis_server

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "12345"
PUBLIC_URL = "https://bot.example.com"
BOT_NUMBER = "+15005550006"


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
async def redis_store(redis_url: str, redis_client: Redis) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_url(redis_url)
    yield store
    await store.close()


@pytest.fixture(scope="session")
def cluster_url() -> Iterator[str]:
    """A real 3-master Redis Cluster for the session (started on first use)."""
    with redis_cluster() as url:
        yield url


@pytest.fixture(params=["memory", "redis", "cluster"])
async def stores(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[Stores]:
    """Every storage backend's four stores, for the contract suites: memory, one Redis, a Redis Cluster."""
    if request.param == "memory":
        yield Stores.memory()
        return
    url = redis_url if request.param == "redis" else request.getfixturevalue("cluster_url")
    found = Stores.from_url(url)
    await found.conversations.client.flushdb()  # type: ignore[attr-defined]  # every master on a cluster
    yield found
    await found.close()


@pytest.fixture
def store(stores: Stores) -> ConversationStore:
    """Every conversation store implementation, for the contract suite."""
    return stores.conversations


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "twilio_account_sid": ACCOUNT_SID,
            "twilio_auth_token": AUTH_TOKEN,
            "public_base_url": PUBLIC_URL,
            "environment": "test",
            "allow_test_environment": True,
            "log_json": True,
        }
        values.update(overrides)
        return load_settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def signed_client(app: Any, *, base_url: str = "http://internal:8000") -> WebhookClient:
    """A client that signs like Twilio for ``PUBLIC_URL`` but talks to the app in-process."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)
    return WebhookClient(http, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_URL)

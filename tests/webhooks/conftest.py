from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI

from bot.settings import Settings
from bot.storage import RedisStore
from devtools.webhook_client import WebhookClient
from tests.conftest import signed_client
from webhooks.app import create_app


@pytest.fixture
def app(settings: Settings, redis_store: RedisStore) -> FastAPI:
    return create_app(settings, store=redis_store)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebhookClient]:
    c = signed_client(app)
    yield c
    await c.http.aclose()


@pytest.fixture
def new_app(make_settings: Callable[..., Settings], redis_url: str) -> Callable[..., FastAPI]:
    """Another app instance (another "process") on the same Redis."""

    def make(**overrides: Any) -> FastAPI:
        return create_app(make_settings(redis_url=redis_url, **overrides))

    return make

"""``bot worker`` serves its metrics over HTTP (``WORKER_METRICS_PORT``): what happens in the worker
(here, a broadcast held for quiet hours) is scrapeable, as the web app's /metrics is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.clock import FrozenClock
from bot.messages import Channel, TemplateMessage
from bot.outbound.models import SendRequest
from bot.runtime import Runtime
from bot.storage import ConversationKey
from bot.worker import supervise
from tests.bot.outbound.conftest import THIRD_PARTY_WARNINGS, Twilio
from tests.conftest import BOT_NUMBER
from tests.support.redis_server import free_port

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

NEW_YORKER = ConversationKey(Channel.SMS, BOT_NUMBER, "+12125550123")


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


async def test_the_worker_serves_what_it_held_for_quiet_hours(
    make_runtime: Callable[..., Runtime], redis_url: str, clock: FrozenClock, twilio: Twilio
) -> None:
    port = free_port()
    runtime = make_runtime(redis_url=redis_url, quiet_hours=True, worker_metrics_port=port)
    clock.set(datetime(2026, 3, 2, 22, 30, tzinfo=ZoneInfo("America/New_York")))
    stop = asyncio.Event()
    worker = asyncio.create_task(supervise(runtime.settings, runtime=runtime, stop=stop, cron_jobs=False,
                                           poll_delay=0.02))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        # A broadcast message at 22:30 in New York: the worker's sender holds it until 08:00.
        await runtime.require_outbound().outbox.submit(SendRequest(
            key=NEW_YORKER, template=TemplateMessage("welcome_back", {"name": "Ana"}), purpose="broadcast",
            idempotency_key="bcast:night:+12125550123", campaign="night"))
        held = ("bot_outbound_held_total", (("reason", "quiet_hours"),))
        deadline = time.monotonic() + 30
        while (samples := await scrape(url)).get(held, 0.0) < 1:
            assert time.monotonic() < deadline, f"the held message never showed at {url}: {samples}"
            await asyncio.sleep(0.05)
        assert samples[held] == 1
        assert twilio.sent() == []  # held, not sent
    finally:
        stop.set()
        await worker
    with pytest.raises(httpx.ConnectError):  # stopped with the worker
        await scrape(url)

"""The arq worker: jobs from the Redis outbox, and a worker killed mid-send sends once."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.clock import FrozenClock
from bot.messages import Channel, InboundMessage
from bot.outbound.ledger import ref_for
from bot.outbound.models import SendRequest
from bot.outbound.outbox import ArqOutbox
from bot.runtime import Runtime
from bot.settings import Settings
from bot.worker import build_worker, check_health
from tests.bot.outbound.conftest import ROOT, SMS_KEY, THIRD_PARTY_WARNINGS, USER, Twilio
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]


@pytest.fixture
def clock() -> FrozenClock:
    # Real "now": a worker in another process compares Twilio's dates with its own clock.
    return FrozenClock(datetime.now(UTC))


@pytest.fixture
def queued_runtime(make_runtime: Callable[..., Runtime], redis_url: str) -> Runtime:
    """A runtime whose outbox is arq on the test Redis."""
    runtime = make_runtime(redis_url=redis_url)
    assert isinstance(runtime.require_outbound().outbox, ArqOutbox)
    return runtime


async def run_burst(runtime: Runtime, **overrides: Any) -> None:
    worker = build_worker(runtime.settings, runtime=runtime, cron_jobs=False, burst=True, handle_signals=False,
                          **{"poll_delay": 0.02, **overrides})
    try:
        await worker.async_run()
    finally:
        await worker.close()


async def test_jobs_run_in_the_worker_once_per_key(queued_runtime: Runtime, twilio: Twilio) -> None:
    outbox = queued_runtime.require_outbound().outbox
    first = SendRequest(key=SMS_KEY, body="one", idempotency_key="k:1")
    await outbox.submit(first)
    await outbox.submit(first)  # same job id: arq keeps one
    await outbox.submit(SendRequest(key=SMS_KEY, body="two", idempotency_key="k:2"), delay=0.1)
    await run_burst(queued_runtime)
    assert sorted(m.body for m in twilio.sent()) == ["one", "two"]
    await outbox.submit(first)  # finished recently: arq drops it; the ledger would anyway
    await run_burst(queued_runtime)
    assert len(twilio.sent()) == 2
    assert queued_runtime.metrics.jobs.labels("send", "sent")._value.get() == 2


async def test_a_turn_job_for_an_answered_message_does_nothing(queued_runtime: Runtime, twilio: Twilio) -> None:
    msg = InboundMessage(message_sid="SM" + "5" * 32, channel=Channel.SMS, user=USER, bot=BOT_NUMBER, body="hi")
    outbox = queued_runtime.require_outbound().outbox
    await outbox.submit_turn(msg, delay=0)
    await run_burst(queued_runtime)
    assert [m.body for m in twilio.sent()] == ["echo: hi"]  # unanswered: the job ran it
    await queued_runtime.engine.handle(msg, deliver=queued_runtime.rest_deliver)
    assert len(twilio.sent()) == 1  # and now it is answered for good
    assert queued_runtime.metrics.jobs.labels("run_turn", "answered")._value.get() == 1


WORKER_SCRIPT = """
import sys
from bot.engine import TurnContext
from bot.messages import TurnResult
from bot.runtime import build_runtime
from bot.settings import load_settings
from bot.worker import build_worker

class Quiet:  # sends only: the Brain is not needed (and slow to build)
    template_context = {}
    async def handle(self, ctx: TurnContext) -> TurnResult:
        return TurnResult()

settings = load_settings()
runtime = build_runtime(settings, handler=Quiet())
build_worker(settings, runtime=runtime, cron_jobs=False, crash_grace=0.5, poll_delay=0.05).run()
"""


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_until(predicate: Callable[[], Any], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await _value(predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _value(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def test_worker_killed_mid_send_sends_once_after_restart(
    queued_runtime: Runtime, twilio: Twilio, redis_url: str, make_settings: Callable[..., Settings]
) -> None:
    env = {
        **os.environ,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url,
        "TWILIO_API_BASE_URL": twilio.url, "ENVIRONMENT": "test", "ALLOW_TEST_ENVIRONMENT": "true",
        "WORKER_JOB_TIMEOUT_SECONDS": "2",
        "OUTBOUND_BACKOFF_SECONDS": "0", "PUBLIC_BASE_URL": "", "LOG_LEVEL": "WARNING",
    }
    request = SendRequest(key=SMS_KEY, body="exactly once, please", idempotency_key="crash:1")
    ledger = queued_runtime.require_outbound().sender.ledger
    # Twilio creates the message at once but its answer is slow: the worker
    # dies after Twilio accepted the message and before it could record that.
    twilio.faults.delay_answers(1.5)
    await queued_runtime.require_outbound().outbox.submit(request)
    first = start_worker(env)
    try:
        await wait_until(lambda: len(twilio.faults.creates) == 1, 60, "the first worker's create call")
        await asyncio.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    assert len(twilio.sent()) == 1
    record = await ledger.get(ref_for(request.idempotency_key))
    assert record is not None and record.state == "pending"  # the crash left its claim behind

    twilio.faults.delay_answers(0)
    second = start_worker(env)
    try:
        # arq re-runs the job once the dead worker's mark expires (timeout + grace).
        async def sent() -> bool:
            done = await ledger.get(ref_for(request.idempotency_key))
            return done is not None and done.state == "sent"

        await wait_until(sent, 30, "the job to run again")
        worker_settings = make_settings(redis_url=redis_url)
        assert await check_health(worker_settings) == 0  # `bot worker --check` sees it alive
    finally:
        second.send_signal(signal.SIGTERM)
        stderr = second.communicate(timeout=10)[1].decode()
    assert [m.body for m in twilio.sent()] == ["exactly once, please"]
    assert len(twilio.faults.creates) == 1, stderr  # found at Twilio, not created again
    done = await ledger.get(ref_for(request.idempotency_key))
    assert done is not None and done.sid == twilio.sent()[0].sid


async def test_health_check_fails_without_a_worker(make_settings: Callable[..., Settings], redis_url: str,
                                                   redis_client: object) -> None:
    assert await check_health(make_settings(redis_url=redis_url)) == 1
    assert await check_health(make_settings()) == 1


def test_compose_runs_the_worker_beside_the_app() -> None:
    import yaml

    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    worker = services["worker"]
    assert worker["command"] == ["bot", "worker"] and worker["image"] == services["app"]["image"]
    assert worker["depends_on"]["redis"]["condition"] == "service_healthy"
    assert worker["healthcheck"]["test"] == ["CMD", "bot", "worker", "--check"]
    assert worker["environment"]["REDIS_URL"] == services["app"]["environment"]["REDIS_URL"]

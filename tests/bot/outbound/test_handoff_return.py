"""The hand-off's return through the worker path: an arq job deferred to the idle deadline.

The Brain starts a hand-off; the job is queued for HANDOFF_IDLE_MINUTES
later. Run (as ``bot worker`` runs it) on the frozen clock, it keeps staff in
charge during the texter's quiet hours (moving itself to the morning), then
ends the hand-off and sends the "I'm back" line once through the simulator.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from arq.constants import default_queue_name

from bot.clock import FrozenClock
from bot.messages import Channel, InboundMessage
from bot.outbound.jobs import handoff_return_job
from bot.outbound.outbox import JOB_HANDOFF_RETURN, ArqOutbox
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from tests.bot.outbound.conftest import THIRD_PARTY_WARNINGS, Twilio
from tests.bot.outbound.test_worker import run_burst
from tests.conftest import BOT_NUMBER

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

NY_USER = "+12125550142"  # quiet hours are this texter's: New York, 9 pm to 8 am
KEY = ConversationKey(Channel.SMS, BOT_NUMBER, NY_USER)
LINE = "Our team hasn't picked this up, so I'm back to help."
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def clock() -> FrozenClock:
    # 4 am in New York, days from now: arq defers by the real clock, so the deadline must lie ahead.
    day = datetime.now(UTC).date() + timedelta(days=2)
    return FrozenClock(datetime.combine(day, time(4), NEW_YORK))


@pytest.fixture
def brain_runtime(make_settings: Callable[..., Settings], redis_store: RedisStore, redis_url: str,
                  clock: FrozenClock, twilio: Twilio) -> Runtime:
    """The real Brain, with arq on the test Redis as its outbox."""
    runtime = build_runtime(make_settings(redis_url=redis_url, outbound_backoff_seconds=0.0), store=redis_store,
                            clock=clock, twilio=twilio.client)
    assert isinstance(runtime.outbound.outbox, ArqOutbox)
    return runtime


async def take_returns(runtime: Runtime) -> list[tuple[dict[str, Any], float]]:
    """The queued hand-off returns (payload, due time), taken off the queue: the test runs them by hand
    on its frozen clock (arq would wait for the real one, and a burst worker for them)."""
    outbox = runtime.outbound.outbox
    assert isinstance(outbox, ArqOutbox)
    jobs = [job for job in await outbox.redis.queued_jobs() if job.function == JOB_HANDOFF_RETURN]
    for job in jobs:
        await outbox.redis.zrem(default_queue_name, job.job_id)
    return [(job.args[0], job.score / 1000) for job in jobs]


async def text(runtime: Runtime, body: str, sid: str) -> None:
    msg = InboundMessage(message_sid=sid, channel=Channel.SMS, user=NY_USER, bot=BOT_NUMBER, body=body)
    assert runtime.rest_deliver is not None
    await runtime.engine.handle(msg, deliver=runtime.rest_deliver)


async def test_the_return_job_waits_out_quiet_hours_then_says_so_once(
    brain_runtime: Runtime, twilio: Twilio, clock: FrozenClock, redis_store: RedisStore
) -> None:
    # 4 am in New York: a hand-off asked for at night.
    await text(brain_runtime, "can i talk to a real person", "SM" + "1" * 32)
    [(payload, due)] = await take_returns(brain_runtime)
    await run_burst(brain_runtime)  # the staff notice (never held)
    assert due == clock.timestamp() + 30 * 60 and payload["user"] == NY_USER
    before = len(twilio.sent())

    # 30 minutes on it is 4:30 am there: staff keep it, the job moves to 8 am.
    clock.advance(timedelta(minutes=31))
    assert await handoff_return_job({"runtime": brain_runtime, "job_try": 1}, payload) == "held"
    [(later, release)] = await take_returns(brain_runtime)
    assert release == clock.now().astimezone(NEW_YORK).replace(hour=8, minute=0, second=0).timestamp()
    state = await redis_store.load(KEY)
    assert state is not None and "handoff_until" in state.data

    clock.advance(timedelta(hours=9))  # 8:31 am New York
    assert await handoff_return_job({"runtime": brain_runtime, "job_try": 1}, later) == "returned"
    await run_burst(brain_runtime)
    to_user = [m.body for m in twilio.sent()[before:] if m.to == NY_USER]
    assert to_user == [LINE]
    state = await redis_store.load(KEY)
    assert state is not None and "handoff_until" not in state.data and state.history[-1].text == LINE

    # arq may run a job twice (a crashed worker): nothing is sent twice.
    assert await handoff_return_job({"runtime": brain_runtime, "job_try": 2}, later) == "duplicate"
    await run_burst(brain_runtime)
    assert [m.body for m in twilio.sent()[before:] if m.to == NY_USER] == [LINE]


async def test_a_message_during_the_hand_off_moves_the_return(
    brain_runtime: Runtime, twilio: Twilio, clock: FrozenClock
) -> None:
    clock.advance(timedelta(hours=10))  # 2 pm in New York: no quiet hours in the way (and open)
    await text(brain_runtime, "agent", "SM" + "2" * 32)
    clock.advance(timedelta(minutes=20))
    await text(brain_runtime, "still there?", "SM" + "3" * 32)
    first, second = sorted(await take_returns(brain_runtime), key=lambda job: job[1])
    assert second[1] - first[1] == 20 * 60

    clock.advance(timedelta(minutes=11))  # the first deadline passed; the second has not
    assert await handoff_return_job({"runtime": brain_runtime}, first[0]) == "active"
    clock.advance(timedelta(minutes=20))
    assert await handoff_return_job({"runtime": brain_runtime}, second[0]) == "returned"
    await run_burst(brain_runtime)
    assert [m.body for m in twilio.sent() if m.to == NY_USER][-1] == LINE

"""A backlog paced at 10/s by the real arq worker: every recipient is sent, once.

A worker that was down meets every job of a campaign due at once. The pacer
defers most of them to their slots on the sending number's shared pace;
each deferral must cost none of a job's tries (they are for failures), or a
long enough backlog runs the later recipients out of tries and arq drops
them unsent, uncounted. The worker here polls as ``bot worker`` does
(arq's half-second default), so a deferred job runs up to that late.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.outbound.broadcast import load_recipients, queue_broadcast
from bot.outbound.jobs import MAX_TRIES
from bot.runtime import Runtime
from tests.bot.outbound.conftest import THIRD_PARTY_WARNINGS, Twilio
from tests.bot.outbound.test_worker import run_burst
from tests.conftest import BOT_NUMBER

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

RATE, COUNT = 10.0, 40
#: arq's own poll interval (``bot worker`` keeps it).
ARQ_POLL = 0.5


async def test_a_backlog_at_ten_a_second_loses_no_recipient(
    make_runtime: Callable[..., Runtime], redis_url: str, twilio: Twilio, tmp_path: Path
) -> None:
    runtime = make_runtime(redis_url=redis_url)
    outbound = runtime.require_outbound()
    path = tmp_path / "backlog.csv"
    path.write_text("\n".join(["to,name", *(f"+1415556{i:04d},P{i}" for i in range(COUNT))]))
    # Queued all due at once (a worker that was down), then paced at 10/s by the campaign's rate.
    await queue_broadcast(outbound, load_recipients(path), template="welcome_back", campaign="backlog",
                          rate=100_000, bot=BOT_NUMBER)
    await outbound.campaigns.start("backlog", template="welcome_back", total=COUNT, rate=RATE)
    # More recipients than a job has tries, times the slots a poll can miss: the old pacer dropped some.
    assert COUNT > MAX_TRIES * RATE * ARQ_POLL

    await run_burst(runtime, poll_delay=ARQ_POLL)

    sent = twilio.sent()
    assert sorted(m.user for m in sent) == sorted(f"+1415556{i:04d}" for i in range(COUNT))
    summary = await outbound.campaigns.summary("backlog")
    assert (summary.sent, summary.failed, summary.pending) == (COUNT, {}, 0)

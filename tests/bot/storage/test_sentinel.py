"""Through a Sentinel failover: 0 lost turns, 0 duplicates, each message answered once.

Real processes on free ports: a master, its replica and one sentinel. Twenty
conversations text through the webhook, concurrently and without pause,
until the sentinel has promoted the replica (SENTINEL FAILOVER, started once
every conversation is a few messages in) and for a few messages after: the
load runs through the whole failover, however long a busy machine makes it.
A delivery that gets no 200 (the store unreachable while the master moves)
is retried with the same MessageSid, as Twilio does. Afterwards every
conversation's state holds each of its messages exactly once and in order,
and a late retry of any message gets its first answer back, byte for byte,
without the bot running it again. Every wait is on real state (the
sentinel's answer, each server's role, messages answered) and bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bot.engine import TurnContext
from bot.messages import Channel, Reply, TurnResult
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from devtools.webhook_client import WebhookClient, inbound_form
from tests.conftest import BOT_NUMBER, signed_client
from tests.support.redis_cluster import SentinelDeployment, redis_sentinel
from webhooks.app import create_app

#: Conversations; messages each before the failover starts, and after it is done.
CONVERSATIONS, BEFORE, AFTER = 20, 3, 3
#: A bound on each conversation's messages (the failover is bounded too; this only stops a runaway).
MOST = 2_000


class Ledger:
    """A handler that writes each message it applies into the conversation's state."""

    def __init__(self) -> None:
        self.template_context: dict[str, Any] = {"business": {"name": "Test Clinic", "phone": "+1 555 010 0199"}}
        self.runs: Counter[str] = Counter()

    async def handle(self, ctx: TurnContext) -> TurnResult:
        self.runs[ctx.message.event_id] += 1
        ctx.state.data.setdefault("applied", []).append(ctx.message.body)
        return TurnResult(replies=(Reply(text=f"got {ctx.message.body}"),), intent="echo")


@pytest.fixture(scope="module")
def sentinel() -> Iterator[SentinelDeployment]:
    with redis_sentinel() as deployment:
        yield deployment


async def deliver(client: WebhookClient, form: dict[str, str]) -> str:
    """Post until a 200, as Twilio retries (bounded: a minute, on a busy machine too)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        resp = await client.post("/twilio/messages", form)
        if resp.status_code == 200:
            return str(resp.text)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{form['MessageSid']} was never answered")


async def test_a_failover_mid_load_loses_and_repeats_nothing(
    sentinel: SentinelDeployment, make_settings: Callable[..., Settings]
) -> None:
    store = RedisStore.from_url(sentinel.url, timeout=1.0)
    handler = Ledger()
    # The webhook waits for every turn (Twilio allows 15 s): each delivery is answered in
    # TwiML or refused with a 503, never handed to a late REST reply (tested elsewhere).
    app = create_app(make_settings(reply_budget_seconds=14), store=store, handler=handler)
    users = [f"+1415555{2000 + n:04d}" for n in range(CONVERSATIONS)]
    sent: dict[str, list[dict[str, str]]] = {user: [] for user in users}
    answers: dict[str, str] = {}
    warmed_up = Counter[str]()
    all_warm, promoting, promoted = asyncio.Event(), asyncio.Event(), asyncio.Event()
    across = Counter[str]()  # messages sent before the failover ended and answered after it began

    def form(user: str, i: int) -> dict[str, str]:
        return inbound_form(Channel.SMS, user, BOT_NUMBER, f"m{i}", message_sid=f"SM{user[-4:]}{i:06d}{'0' * 22}")

    async def conversation(client: WebhookClient, user: str) -> None:
        after = 0
        for i in range(MOST):
            if after == AFTER:
                return
            sent[user].append(message := form(user, i))
            before_end = not promoted.is_set()
            answers[message["MessageSid"]] = await deliver(client, message)
            if before_end and promoting.is_set():
                across[user] += 1
            if promoted.is_set():
                after += 1
            warmed_up[user] += 1
            if len([u for u in users if warmed_up[u] >= BEFORE]) == len(users):
                all_warm.set()
        raise AssertionError(f"{user}: the failover outlasted {MOST} messages")

    async def promote() -> int:
        await all_warm.wait()
        promoting.set()
        try:
            return await asyncio.to_thread(sentinel.failover)
        finally:
            promoted.set()

    old_master = sentinel.master()
    async with app.router.lifespan_context(app):
        client = signed_client(app)
        results = await asyncio.gather(promote(), *(conversation(client, user) for user in users))
        new_master = results[0]
        assert new_master != old_master and sentinel.master() == new_master
        assert set(across) == set(users)  # every conversation had a message in flight across the failover
        # Twilio retries every message once more, late: each gets its first answer, nothing runs again.
        runs_before = sum(handler.runs.values())
        for user in users:
            for message in sent[user]:
                assert await deliver(client, message) == answers[message["MessageSid"]]
        assert sum(handler.runs.values()) == runs_before
        await client.http.aclose()

    # 0 lost, 0 duplicated, in order: the state holds each message once.
    reader = RedisStore.from_url(sentinel.url)
    for user in users:
        state = await reader.load(ConversationKey(Channel.SMS, BOT_NUMBER, user))
        assert state is not None
        assert state.data["applied"] == [m["Body"] for m in sent[user]], user
        assert len(sent[user]) >= BEFORE + AFTER
    await reader.close()
    assert len(answers) == sum(len(messages) for messages in sent.values())
    assert all(answer.count("got m") == 1 for answer in answers.values())

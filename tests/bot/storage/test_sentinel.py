"""Through a Sentinel failover: 0 lost turns, 0 duplicates, each message answered once.

Real processes on free ports: a master, its replica and one sentinel. Twenty
conversations text ten messages each, concurrently, through the webhook; in
the middle the sentinel promotes the replica (SENTINEL FAILOVER). A delivery
that gets no 200 (the store unreachable while the master moves) is retried
with the same MessageSid, as Twilio does. Afterwards every conversation's
state holds each of its messages exactly once and in order, and a late
retry of any message gets its first answer back, byte for byte, without
the bot running it again.
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

CONVERSATIONS, MESSAGES = 20, 10


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
    app = create_app(make_settings(), store=store, handler=handler)
    users = [f"+1415555{2000 + n:04d}" for n in range(CONVERSATIONS)]
    forms = {user: [inbound_form(Channel.SMS, user, BOT_NUMBER, f"m{i}", message_sid=f"SM{user[-4:]}{i:04d}{'0' * 24}")
                    for i in range(MESSAGES)] for user in users}
    answers: dict[str, str] = {}
    halfway, promoted = asyncio.Event(), asyncio.Event()
    during = Counter[str]()  # messages answered while the sentinel was promoting

    async def conversation(client: WebhookClient, user: str) -> None:
        for i, form in enumerate(forms[user]):
            answers[form["MessageSid"]] = await deliver(client, form)
            if i == MESSAGES // 3:
                halfway.set()
            if halfway.is_set() and not promoted.is_set():
                during[user] += 1
                await asyncio.sleep(0.05)  # keep the load going through the failover

    async def promote() -> int:
        await halfway.wait()
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
        assert sum(during.values()) > 0  # the load did run across the failover
        # Twilio retries every message once more, late: each gets its first answer, nothing runs again.
        runs_before = sum(handler.runs.values())
        for user in users:
            for form in forms[user]:
                assert await deliver(client, form) == answers[form["MessageSid"]]
        assert sum(handler.runs.values()) == runs_before
        await client.http.aclose()

    # 0 lost, 0 duplicated, in order: the state holds each message once.
    reader = RedisStore.from_url(sentinel.url)
    for user in users:
        state = await reader.load(ConversationKey(Channel.SMS, BOT_NUMBER, user))
        assert state is not None
        assert state.data["applied"] == [f"m{i}" for i in range(MESSAGES)], user
    await reader.close()
    assert len(answers) == CONVERSATIONS * MESSAGES
    assert all(answer.count("got m") == 1 for answer in answers.values())

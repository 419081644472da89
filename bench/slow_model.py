"""Section 4: a model that takes 20 s must not hold the webhook past the reply budget.

A scripted LangChain fake model (``FakeListChatModel`` that waits 20 s per
call; the wait is an ``asyncio.sleep``, as a real provider's HTTP call
awaits, instead of the stock ``time.sleep`` in a worker thread) is passed
through ``create_app(chat_model=...)``. N users (SMS and WhatsApp) each send
one out-of-scope message at once, which reaches the model. Measured:

- the webhook's answer time (must stay within ``REPLY_BUDGET_SECONDS``; the
  answer is then an empty ``<Response/>``);
- the time until the bot's REST reply reaches the local Twilio simulator
  (``message.created`` from the bot for that user).

Two configurations run side by side: the default ``LLM_TIMEOUT_SECONDS`` (8,
so the model times out and the offline fallback goes by REST) and a timeout
above the model's 20 s (the model's own answer goes by REST).

Needs the REST path (``runtime.rest_deliver``); without it it reports "not available".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from bench.inproc import InProcessBot, LocalTwilio
from bench.payloads import OUT_OF_SCOPE
from bench.servers import RedisServer
from bot.messages import Channel

MODEL_SECONDS = 20.0
ANSWER = json.dumps({"intent": "fallback", "answer": "I can only help with appointments and clinic questions."})


class SlowFakeChatModel(FakeListChatModel):
    """``FakeListChatModel`` whose async path awaits ``sleep`` seconds per call."""

    calls: int = 0

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, **kwargs: Any) -> ChatResult:
        self.calls += 1
        await asyncio.sleep(self.sleep or 0)
        text = self.responses[self.i]
        self.i = (self.i + 1) % len(self.responses)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _scenario(redis: RedisServer, twilio: LocalTwilio, *, users: int, prefix: str,
                    **settings: Any) -> dict[str, Any]:
    from devtools.simulator import EventKind, MessageOrigin

    model = SlowFakeChatModel(responses=[ANSWER], sleep=MODEL_SECONDS)
    async with InProcessBot(redis.url, twilio_api=twilio.url, chat_model=model, **settings) as bot:
        if bot.services.rest_deliver is None:
            return {"status": "not available: the runtime has no REST deliverer (runtime.rest_deliver)"}
        people = [(Channel.WHATSAPP if i % 2 else Channel.SMS, f"+1{prefix}{i:07d}") for i in range(users)]
        addresses = {channel.address(user) for channel, user in people}
        rest_at: dict[str, float] = {}
        rest_body: dict[str, str] = {}
        all_replied = asyncio.Event()
        subscription = twilio.sim.subscribe()

        async def watch() -> None:
            while True:
                event = await subscription.get()
                message = event.message
                if (event.kind is EventKind.MESSAGE_CREATED and message is not None
                        and message.origin is MessageOrigin.BOT and message.to in addresses
                        and message.to not in rest_at):
                    rest_at[message.to] = time.perf_counter()
                    rest_body[message.to] = message.body
                    if len(rest_at) == len(addresses):
                        all_replied.set()

        watcher = asyncio.create_task(watch())
        started = time.perf_counter()

        async def one(i: int, channel: Channel, user: str) -> dict[str, Any]:
            t0 = time.perf_counter()
            sent = await bot.send(channel, user, OUT_OF_SCOPE[i % len(OUT_OF_SCOPE)])
            return {"address": channel.address(user), "t0": t0, "webhook_s": sent.seconds,
                    "status": sent.status, "twiml_messages": len(sent.replies)}

        rows = await asyncio.gather(*(one(i, c, u) for i, (c, u) in enumerate(people)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_replied.wait(), MODEL_SECONDS + 15)
        watcher.cancel()
        subscription.close()
        webhook = [r["webhook_s"] for r in rows]
        rest = [rest_at[r["address"]] - r["t0"] for r in rows if r["address"] in rest_at]
        budget = bot.settings.reply_budget_seconds
        return {
            "status": "ok",
            "users": users,
            "llm_timeout_seconds": bot.settings.llm_timeout_seconds,
            "reply_budget_seconds": budget,
            "model_calls": model.calls,
            "webhook_median_s": _percentile(webhook, 0.5),
            "webhook_p99_s": _percentile(webhook, 0.99),
            "webhook_within_budget": max(webhook) <= budget,
            "webhook_p99_over_budget_ms": round((_percentile(webhook, 0.99) - budget) * 1000, 1),
            "webhook_statuses": sorted({r["status"] for r in rows}),
            "webhook_empty_answers": sum(r["twiml_messages"] == 0 for r in rows),
            "rest_replies": len(rest),
            "rest_reply_median_s": _percentile(rest, 0.5) if rest else None,
            "rest_reply_p99_s": _percentile(rest, 0.99) if rest else None,
            "rest_reply_sample": next(iter(rest_body.values()), None),
            "elapsed_s": time.perf_counter() - started,
        }


async def _run(redis: RedisServer, users: int) -> dict[str, Any]:
    async with LocalTwilio() as twilio:
        default, patient = await asyncio.gather(
            _scenario(redis, twilio, users=users, prefix="420"),
            _scenario(redis, twilio, users=users, prefix="421", LLM_TIMEOUT_SECONDS=MODEL_SECONDS + 5),
        )
    return {"model_seconds": MODEL_SECONDS, "default_timeout": default, "timeout_above_model": patient}


def run(redis: RedisServer, users: int = 10) -> dict[str, Any]:
    try:
        return asyncio.run(_run(redis, users))
    except Exception as exc:  # report, never fake a number
        return {"status": f"not available: {exc.__class__.__name__}: {exc}"}

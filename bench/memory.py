"""Section 3: Redis memory per conversation after 1, 10 and 50 turns.

C conversations (SMS and WhatsApp) each send ordinary messages (greetings,
questions, thanks; no bookings) through the in-process app on the bench's
private, otherwise empty Redis. At each checkpoint:

- the keys of each conversation (``SCAN MATCH *{<channel>:<bot>:<user>}*``:
  every key of a conversation carries its hash tag; SCAN is fine on the
  bench's own Redis, never in product code) and ``MEMORY USAGE`` of each,
  grouped by kind (state, dedupe answers, opt-out ...);
- the growth of ``used_memory`` divided by C: a cross-check that includes
  keys without the tag and the dictionary and expiry overhead ``MEMORY
  USAGE`` leaves out, but moves with the allocator at these small counts.

The projection for one million active conversations is the median of the
per-conversation sums *at rest* times a million: every key but the cached
answers. An answer (``conv:{...}:msg:<digest>``, the TwiML served, for a
retried delivery) lives ``DEDUPE_ANSWER_TTL_SECONDS`` (15 min), so answer
memory follows the message rate, not the number of conversations: messages
per second x TTL x answer size (shown beside). What stays per conversation:
the state (``CONVERSATION_TTL_SECONDS``, 7 days; compressed when long), the
``seen`` record (its last 32 MessageSids as 8-character digests, 6 h) and
an opt-out flag for those who opted out.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter
from typing import Any

from bench import payloads
from bench.inproc import BOT_NUMBER, InProcessBot, LocalTwilio
from bench.servers import RedisServer
from bot.messages import Channel
from bot.storage.base import ConversationKey

CHECKPOINTS = (1, 10, 50)
TARGET_BYTES = 4096
STATE = "state (JSON)"
ANSWERS = "dedupe answers (msg:*)"
SEEN = "seen MessageSids"


def _kind(key: str) -> str:
    if key.startswith("optout:"):
        return "opt-out flag"
    if key.startswith("conv:"):
        part = key.split("}:", 1)[1] if "}:" in key else key
        if part == "state":
            return STATE
        if part.startswith("msg:"):
            return ANSWERS
        if part == "seen":
            return SEEN
        return f"conv {part.split(':', 1)[0]}"
    return key.split(":", 1)[0] + ":*"


def _conversation_bytes(client: Any, key: ConversationKey) -> tuple[int, Counter[str], Counter[str]]:
    """All keys of one conversation: total bytes, bytes by kind, keys by kind."""
    by_kind: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    for name in client.scan_iter(match=f"*{key.tag}*", count=1000):
        kind = _kind(name)
        by_kind[kind] += client.memory_usage(name, samples=0) or 0
        keys[kind] += 1
    return sum(by_kind.values()), by_kind, keys


async def _conversations(redis: RedisServer, twilio: LocalTwilio, *, conversations: int,
                         checkpoints: tuple[int, ...], **settings: Any) -> dict[str, Any]:
    client = redis.client()
    client.flushall()
    rng = random.Random(3)
    texts = payloads.GREETINGS + [q for qs in payloads.QUESTIONS.values() for q in qs] + payloads.THANKS
    users = [(Channel.WHATSAPP if i % 3 == 0 else Channel.SMS, f"+1418{i:07d}") for i in range(conversations)]
    keys = [ConversationKey(channel, BOT_NUMBER, user) for channel, user in users]
    out: dict[str, Any] = {}
    async with InProcessBot(redis.url, twilio_api=twilio.url, **settings) as bot:
        # Warm up on a conversation that is not measured (scripts, caches).
        await bot.send(Channel.SMS, "+19990000000", "hi")
        base = int(redis.info("memory")["used_memory"])
        done = 0
        for checkpoint in checkpoints:
            for _ in range(checkpoint - done):
                for channel, user in users:
                    sent = await bot.send(channel, user, rng.choice(texts))
                    if sent.status != 200:
                        raise RuntimeError(f"memory run: HTTP {sent.status}")
            done = checkpoint
            await asyncio.sleep(0)
            used = int(redis.info("memory")["used_memory"]) - base
            totals, rests, kinds, key_kinds, counts = [], [], Counter[str](), Counter[str](), []
            for key in keys:
                total, by_kind, key_count = _conversation_bytes(client, key)
                totals.append(total)
                rests.append(total - by_kind.get(ANSWERS, 0))
                kinds.update(by_kind)
                key_kinds.update(key_count)
                counts.append(sum(key_count.values()))
            answers = key_kinds.get(ANSWERS, 0)
            state_len = statistics.median(len(str(client.get(k.part("state")) or "")) for k in keys)
            per_conversation = used / conversations
            out[str(checkpoint)] = {
                "turns": checkpoint,
                "keys_per_conversation": statistics.median(counts),
                "memory_usage_bytes_median": statistics.median(totals),
                "at_rest_bytes_median": statistics.median(rests),
                "answer_bytes_mean": round(kinds.get(ANSWERS, 0) / answers) if answers else 0,
                "memory_usage_by_kind_mean": {k: round(v / conversations) for k, v in kinds.most_common()},
                "state_json_chars_median": state_len,
                "used_memory_growth_per_conversation": round(per_conversation),
                "projected_gb_per_million": round(statistics.median(rests) * 1e6 / 1e9, 2),
                "live_projected_gb_per_million": round(statistics.median(totals) * 1e6 / 1e9, 2),
                "state_only_projected_gb_per_million": round(
                    kinds.get(STATE, 0) / conversations * 1e6 / 1e9, 2),
            }
    return out


async def _run(redis: RedisServer, conversations: int) -> dict[str, Any]:
    async with LocalTwilio() as twilio:
        default = await _conversations(redis, twilio, conversations=conversations, checkpoints=CHECKPOINTS)
        # HISTORY_LIMIT counts entries (a user line and a bot line per turn):
        # 40 entries keep the last 20 turns.
        history40 = await _conversations(redis, twilio, conversations=max(5, conversations // 4),
                                         checkpoints=(50,), HISTORY_LIMIT=40)
    return {
        "conversations": conversations,
        "history_limit": 20,
        "checkpoints": default,
        "history_limit_40_at_50_turns": history40["50"],
        "target_bytes": TARGET_BYTES,
    }


def run(redis: RedisServer, conversations: int = 30) -> dict[str, Any]:
    try:
        return asyncio.run(_run(redis, conversations))
    finally:
        redis.client().flushall()

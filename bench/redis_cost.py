"""Section 2: Redis commands and round trips per inbound message, by kind.

The project app runs in this process (:class:`bench.inproc.InProcessBot`) on
the bench's private Redis. For each kind of message, K users each send one
message of that kind, one after another (no concurrency, so no lock
polling), and the deltas are divided by K:

- round trips: packets the store's Redis client sent (an ``EVALSHA`` is one
  round trip however many commands its Lua script runs), plus commands from
  any other client of the app (the outbox's arq pool), each counted as one;
- commands by name, sent by clients and run inside Lua scripts (Redis
  ``MONITOR`` tells them apart; ``INFO commandstats`` counts both together,
  and its delta is reported as the total).

Booking steps run for K users picking varied days and times, so later users
find a fuller book (as in the load test).
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bench import payloads
from bench.inproc import InProcessBot, LocalTwilio, MonitorTap
from bench.servers import RedisServer
from bot.messages import Channel

BENCH_COMMANDS = frozenset({"info", "echo"})
ORDINARY = ("greeting (new conversation)", "question", "thanks", "out of scope (offline fallback)",
            "keyword HELP", "keyword STOP", "keyword START")


async def _measure(bot: InProcessBot, redis: RedisServer, tap: MonitorTap,
                   sends: list[Callable[[], Awaitable[Any]]]) -> dict[str, Any]:
    tap.take()
    stats0 = redis.commandstats()
    store0 = Counter(bot.counter.commands)
    per_message: list[int] = []
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    for send in sends:
        before = bot.counter.packets
        sent = await send()
        per_message.append(bot.counter.packets - before)
        latencies.append(sent.seconds * 1000)
        statuses[sent.status] += 1
    seen = await asyncio.to_thread(tap.take)
    n = len(sends)
    store = Counter(bot.counter.commands)
    store.subtract(store0)
    # The bench's own INFO/ECHO calls are not the app's.
    client = Counter(name for source, name in seen if source == "client" and name not in BENCH_COMMANDS)
    inside = Counter(name for source, name in seen if source == "lua")
    # Commands some other client of the app sent (e.g. the outbox's arq pool).
    others = Counter({k: v - store.get(k, 0) for k, v in client.items() if v - store.get(k, 0) > 0})
    total = Counter(redis.commandstats())
    total.subtract(stats0)
    total.pop("info", None)
    total.pop("echo", None)
    store_trips = sum(per_message)
    return {
        "messages": n,
        "round_trips_mean": (store_trips + sum(others.values())) / n,
        "store_round_trips_mean": store_trips / n,
        "store_round_trips_max": max(per_message),
        "client_commands_per_msg": {k: round(v / n, 2) for k, v in sorted(client.items())},
        "other_clients_commands_per_msg": {k: round(v / n, 2) for k, v in sorted(others.items())},
        "commands_in_scripts_per_msg": {k: round(v / n, 2) for k, v in sorted(inside.items())},
        "all_commands_per_msg": round(sum(v for v in total.values() if v > 0) / n, 2),
        "latency_median_ms": statistics.median(latencies),
        "statuses": {str(k): v for k, v in statuses.items()},
    }


async def _run(redis: RedisServer, k: int) -> dict[str, Any]:
    rng = random.Random(7)
    kinds: dict[str, Any] = {}
    tap = MonitorTap(redis.url)
    async with LocalTwilio() as twilio, InProcessBot(redis.url, twilio_api=twilio.url) as bot:
        # Warm up: script loads, connection set-up, first-call caches.
        for i in range(5):
            await bot.send(Channel.SMS, f"+1999000{i:04d}", "hi")
        users = [(Channel.WHATSAPP if i % 3 == 0 else Channel.SMS, f"+1415{i:07d}") for i in range(k)]
        sms_users = [(Channel.SMS, f"+1416{i:07d}") for i in range(k)]
        book_sms = [(Channel.SMS, f"+1417{i:07d}") for i in range(k)]
        book_whatsapp = [(Channel.WHATSAPP, f"+1419{i:07d}") for i in range(k)]

        def each(pool: list[tuple[Channel, str]], texts: list[str]) -> list[Callable[[], Awaitable[Any]]]:
            def one(channel: Channel, user: str) -> Callable[[], Awaitable[Any]]:
                return lambda: bot.send(channel, user, rng.choice(texts))

            return [one(c, u) for c, u in pool]

        questions = [q for qs in payloads.QUESTIONS.values() for q in qs]
        plan: list[tuple[str, list[Callable[[], Awaitable[Any]]]]] = [
            ("greeting (new conversation)", each(users, payloads.GREETINGS)),
            ("question", each(users, questions)),
            ("thanks", each(users, payloads.THANKS)),
            ("out of scope (offline fallback)", each(users, payloads.OUT_OF_SCOPE)),
            ("keyword HELP", each(sms_users, ["HELP"])),
            ("keyword STOP", each(sms_users, ["STOP"])),
            ("message while opted out", each(sms_users, questions)),
            ("keyword START", each(sms_users, ["START"])),
        ]
        # Booking, per channel: on WhatsApp the offered choices are buttons,
        # which only the REST API can send (the sender's ledger adds Redis calls).
        for channel, pool in (("SMS", book_sms), ("WhatsApp", book_whatsapp)):
            plan += [
                (f"booking 1: start ({channel})", each(pool, payloads.BOOK_START)),
                (f"booking 2: date ({channel})", each(pool, payloads.BOOK_DATE)),
                (f"booking 3: time ({channel})", each(pool, payloads.BOOK_TIME)),
                (f"booking 4: confirm ({channel})", each(pool, payloads.BOOK_CONFIRM)),
            ]
        # The voice webhook beside messaging: a call's requests, one kind at a time
        # (the greeting, a question, a booking by speech and keys, the status callback).
        callers = [(f"+1418{i:07d}", "CA" + f"{i:032x}") for i in range(k)]

        def calls(path: str, texts: list[str] | None = None, **fields: str) -> list[Callable[[], Awaitable[Any]]]:
            def one(user: str, sid: str) -> Callable[[], Awaitable[Any]]:
                said = {"SpeechResult": rng.choice(texts), "Confidence": "0.93"} if texts else {}
                return lambda: bot.call(user, path, call_sid=sid, **said, **fields)

            return [one(u, s) for u, s in callers]

        plan += [
            ("voice: incoming call (greeting)", calls("/twilio/voice", CallStatus="ringing")),
            ("voice: question", calls("/twilio/voice/turn?n=1", questions)),
            ("voice: booking 1: start", calls("/twilio/voice/turn?n=2", payloads.BOOK_START)),
            ("voice: booking 2: date", calls("/twilio/voice/turn?n=3", payloads.BOOK_DATE)),
            ("voice: booking 3: time", calls("/twilio/voice/turn?n=4", payloads.BOOK_TIME)),
            ("voice: booking 4: keypad 1", calls("/twilio/voice/turn?n=5", Digits="1")),
            ("voice: call status callback", calls("/twilio/voice/status", CallStatus="completed",
                                                  CallDuration="75")),
        ]
        for name, sends in plan:
            kinds[name] = await _measure(bot, redis, tap, sends)
        # A retried delivery of an answered MessageSid: served from the dedupe cache.
        sid_user = users[0]
        first = await bot.send(*sid_user, "hi", message_sid="SM" + "d" * 32)
        assert first.status == 200
        kinds["retry of an answered MessageSid"] = await _measure(
            bot, redis, tap, [lambda: bot.send(*sid_user, "hi", message_sid="SM" + "d" * 32) for _ in range(k)]
        )
    tap.close()
    ordinary = [kinds[name]["round_trips_mean"] for name in ORDINARY]
    return {
        "k_per_kind": k,
        "kinds": kinds,
        "ordinary_round_trips_max_mean": max(ordinary),
        "ordinary_kinds": list(ORDINARY),
        "target_round_trips": 3,
    }


def run(redis: RedisServer, k: int = 100) -> dict[str, Any]:
    redis.client().flushall()
    return asyncio.run(_run(redis, k))

"""The project app in this process, on a private Redis, driven by signed webhooks.

Used by the Redis-cost, memory and slow-model sections: requests go through
the real ASGI app (signature, exactly-once, compliance, brain, TwiML) via
``httpx.ASGITransport`` with the app's lifespan running, and the store's
Redis client counts its own round trips (one per packet of commands sent;
an ``EVALSHA`` is one round trip however many commands its script runs).

The bot's REST calls (WhatsApp buttons, late replies) go to a local Twilio
simulator (:class:`LocalTwilio`, served on 127.0.0.1 in this event loop);
its status callbacks are absorbed in-process. Nothing leaves the machine.

Example::

    async with LocalTwilio() as twilio, InProcessBot(redis_url, twilio_api=twilio.url) as bot:
        reply = await bot.send(Channel.SMS, "+14155550123", "hi")
        bot.counter.packets, bot.counter.commands
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx
import redis
import uvicorn
from redis.asyncio import ConnectionPool, Redis
from redis.asyncio.connection import Connection

from bot.messages import Channel
from bot.settings import load_settings
from bot.storage import RedisBackend, RedisStore
from devtools.webhook_client import WebhookClient, inbound_form, new_sid, parse_twiml
from webhooks.app import create_app

BOT_NUMBER = "+15005550006"
PUBLIC_BASE_URL = "https://bot.bench.example"
ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-auth-token"  # noqa: S105 - a private Redis and an in-process app


class LocalTwilio:
    """The project's Twilio simulator on 127.0.0.1, in this event loop.

    ``sim`` is the :class:`devtools.simulator.Simulator`; subscribe to it to see
    what the bot sent and when.
    """

    def __init__(self, *, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN) -> None:
        from bench.apps import build_simulator

        self.sim, self.app = build_simulator(account_sid, auth_token)
        from bench.servers import free_port

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(self.app, host="127.0.0.1", port=self.port,
                                                     log_level="warning", access_log=False))
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LocalTwilio:
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 10
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                raise RuntimeError("the local Twilio simulator did not start")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=10)


class MonitorTap:
    """Redis ``MONITOR`` in a thread: which commands ran, from a client or inside a script.

    ``take()`` returns the commands seen since the previous ``take()`` as
    (source, name) pairs, source ``"lua"`` or ``"client"``. Benchmark only:
    MONITOR slows Redis down.
    """

    def __init__(self, url: str) -> None:
        self._client = redis.Redis.from_url(url)
        self._monitor = self._client.monitor()  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        self._seen: list[tuple[str, str]] = []
        self._marks: set[str] = set()
        self._marker_client = redis.Redis.from_url(url)
        self._serial = 0
        self._monitor.__enter__()
        self._thread = threading.Thread(target=self._read, name="bench-monitor", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for info in self._monitor.listen():
                command = info["command"]
                name = command.split(" ", 1)[0].lower()
                with self._lock:
                    if name == "echo" and "bench-mark-" in command:
                        self._marks.add(command.split("bench-mark-", 1)[1].strip())
                        continue
                    self._seen.append(("lua" if info["client_type"] == "lua" else "client", name))
        except Exception:  # noqa: S110 - the connection closes when the tap does
            pass

    def take(self) -> list[tuple[str, str]]:
        self._serial += 1
        mark = str(self._serial)
        self._marker_client.echo(f"bench-mark-{mark}")
        deadline = time.monotonic() + 10
        while True:
            with self._lock:
                if mark in self._marks:
                    seen, self._seen = self._seen, []
                    return seen
            if time.monotonic() > deadline:
                raise RuntimeError("MONITOR did not deliver its mark")
            time.sleep(0.005)

    def close(self) -> None:
        try:
            self._monitor.connection.disconnect()
        finally:
            self._client.close()
            self._marker_client.close()


class RoundTrips:
    """Counts what one Redis client sends: packets (round trips) and command names."""

    def __init__(self) -> None:
        self.packets = 0
        self.commands: Counter[str] = Counter()

    def connection_class(self) -> type[Connection]:
        counter = self

        class CountingConnection(Connection):
            async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
                counter.packets += 1
                await super().send_packed_command(command, check_health)

            async def send_command(self, *args: Any, **kwargs: Any) -> None:
                counter.commands[str(args[0]).lower()] += 1
                await super().send_command(*args, **kwargs)

            def pack_commands(self, commands: Any) -> list[bytes]:
                # A pipeline: many commands, one packet (counted when sent).
                commands = list(commands)
                for args in commands:
                    counter.commands[str(args[0]).lower()] += 1
                packed: list[bytes] = super().pack_commands(commands)
                return packed

        return CountingConnection


@dataclass
class Sent:
    status: int
    replies: list[str]
    seconds: float


class InProcessBot:
    """``create_app`` with a counting Redis client; ``send`` posts one signed message."""

    def __init__(self, redis_url: str, *, twilio_api: str, chat_model: Any = None, **settings: Any) -> None:
        self.redis_url = redis_url
        self.counter = RoundTrips()
        self.chat_model = chat_model
        self.settings = load_settings(
            TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_BASE_URL,
            TWILIO_API_BASE_URL=twilio_api, REDIS_URL=redis_url, ENVIRONMENT="production", LLM_MODEL="",
            LOG_LEVEL="WARNING", **settings,
        )
        self._stack = AsyncExitStack()
        self.app: Any = None
        self.client: WebhookClient | None = None

    async def __aenter__(self) -> InProcessBot:
        pool = ConnectionPool.from_url(self.redis_url, decode_responses=True,
                                       connection_class=self.counter.connection_class(),
                                       socket_timeout=5.0, socket_connect_timeout=2.0)
        store = RedisStore(RedisBackend(Redis(connection_pool=pool)))
        self.app = create_app(self.settings, store=store, chat_model=self.chat_model)
        await self._stack.enter_async_context(self.app.router.lifespan_context(self.app))
        http = await self._stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url="http://bot", timeout=60)
        )
        self.client = WebhookClient(http, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_BASE_URL)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stack.aclose()

    @property
    def services(self) -> Any:
        return self.app.state.services

    async def send(self, channel: Channel, user: str, body: str, *, message_sid: str | None = None) -> Sent:
        assert self.client is not None
        fields = inbound_form(channel, user, BOT_NUMBER, body, message_sid=message_sid or new_sid(),
                              account_sid=self.settings.twilio_account_sid,
                              profile_name="Sam" if channel is Channel.WHATSAPP else None)
        started = time.perf_counter()
        resp = await self.client.post("/twilio/messages", fields)
        elapsed = time.perf_counter() - started
        replies = [body for body, _ in parse_twiml(resp.text)] if resp.status_code == 200 else []
        return Sent(resp.status_code, replies, elapsed)

    async def call(self, user: str, path: str, *, call_sid: str, **fields: str) -> Sent:
        """One signed request of a phone call (the voice webhook, a Gather action, a status callback)."""
        assert self.client is not None
        form = {"CallSid": call_sid, "AccountSid": self.settings.twilio_account_sid, "From": user,
                "To": BOT_NUMBER, "Caller": user, "Called": BOT_NUMBER, "Direction": "inbound",
                "ApiVersion": "2010-04-01", "CallStatus": "in-progress", **fields}
        started = time.perf_counter()
        resp = await self.client.post(path, form)
        elapsed = time.perf_counter() - started
        said = re.findall(r"<Say[^>]*>([^<]*)</Say>", resp.text) if resp.status_code == 200 else []
        return Sent(resp.status_code, said, elapsed)

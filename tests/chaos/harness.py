"""The chaos cluster and its load: real processes, a Twilio stand-in, and the books.

:class:`Cluster` runs what production runs, as processes: one
``redis-server`` (append-only, as in docker-compose.yml), two ``bot serve``
(A and B) and one ``bot worker``, with production settings, against the
local Twilio simulator (in this process). Server A answers every turn late
(``REPLY_BUDGET_SECONDS`` below its margin: the REST path, with a recovery
job per turn, as under a slow model); B answers in TwiML.

:class:`Load` plays Twilio: each message is POSTed signed to a primary
server; a non-2xx (or no answer) is not Twilio's last word: it goes to the
other server (the fallback URL) and, standing in for Twilio's retries, again
until acknowledged. The books (:class:`Report`) then say, per user, how many
messages were acknowledged with 2xx and how many answers reached the user
(in the acknowledged TwiML, or by REST at the simulator):

- lost: acknowledged but never answered;
- duplicated: answered more than once;
- opted-out answered: any normal answer to a user after their STOP.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bot.messages import Channel
from devtools.simulator import Simulator, SimulatorConfig, create_simulator_app
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PUBLIC_URL
from tests.support.processes import ROOT, BotProcess, RedisProcess, bot_env
from tests.support.redis_server import free_port
from tests.support.servers import run_app

#: What every load message asks; the bot answers it with exactly one "hours" reply.
QUESTION = "what are your hours?"
HOURS = "hours:"


def is_hours(text: str) -> bool:
    return HOURS in text


class _ToServer(httpx.AsyncBaseTransport):
    """The simulator's status callbacks go to the public URL: deliver them to a live server."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.inner = httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = httpx.URL(self.cluster.b.url)
        request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
        return await self.inner.handle_async_request(request)


class Cluster:
    """Redis, servers A and B, the worker and the simulator (see the module docstring)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis: RedisProcess
        self.sim: Simulator
        self.sim_url = ""
        self.a: BotProcess
        self.b: BotProcess
        self.worker: BotProcess

    @classmethod
    @contextmanager
    def start(cls, workdir: Path) -> Iterator[Cluster]:
        cluster = cls(workdir)
        with ExitStack() as stack:
            cluster.redis = stack.enter_context(RedisProcess.start())
            cluster.sim = Simulator(
                account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, config=SimulatorConfig(step_delay=0.2),
                http_client=httpx.AsyncClient(transport=_ToServer(cluster), timeout=5),
            )
            cluster.sim_url = stack.enter_context(run_app(create_simulator_app(cluster.sim)))
            intents = _intents_without_quiet_hours(workdir)
            common = bot_env(
                # The processes run on the real clock: with the demo's 08:00-21:00 window a broadcast
                # to California numbers is held all night (05:00-16:00 UTC), and the worker test
                # would measure quiet hours (tested in tests/bot/outbound/test_held.py), not a crash.
                INTENTS_DIR=str(intents),
                TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, PUBLIC_BASE_URL=PUBLIC_URL,
                ENVIRONMENT="production", REDIS_URL=cluster.redis.url, TWILIO_API_BASE_URL=cluster.sim_url,
                TWILIO_PHONE_NUMBER=BOT_NUMBER, LOG_JSON="true", LLM_MODEL="",
                # CHAOS_LOG_LEVEL=INFO keeps every turn's log line (serve-a.log ... in the test's tmp dir).
                LOG_LEVEL=os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
                # Short leases so crashed holders are skipped within the test's patience.
                LOCK_LEASE_SECONDS="3", LOCK_WAIT_SECONDS="15", WORKER_JOB_TIMEOUT_SECONDS="15",
                OUTBOUND_BACKOFF_SECONDS="0.1", BROADCAST_RATE_PER_SECOND="25",
            )
            port_a, port_b = free_port(), free_port()
            cluster.a = BotProcess(["serve", "--host", "127.0.0.1", "--port", str(port_a)],
                                   {**common, "REPLY_BUDGET_SECONDS": "0.01"}, workdir / "serve-a.log", port_a)
            cluster.b = BotProcess(["serve", "--host", "127.0.0.1", "--port", str(port_b)], common,
                                   workdir / "serve-b.log", port_b)
            cluster.worker = BotProcess(["worker"], common, workdir / "worker.log")
            for process in (cluster.worker, cluster.a, cluster.b):
                stack.callback(process.stop)
            for process in (cluster.worker, cluster.a, cluster.b):
                process.spawn()  # all at once: each spends its start-up training the classifier
            cluster.a.wait_ready()
            cluster.b.wait_ready()
            yield cluster

    @property
    def servers(self) -> list[BotProcess]:
        return [self.a, self.b]

    def rest_answers(self, user: str) -> list[str]:
        """Bodies the bot sent ``user`` through the REST API (the simulator saw them)."""
        return [m.body or "" for m in self.sim.messages() if m.direction == "outbound-api" and m.user == user]

    def log_lines(self) -> list[str]:
        return [line for p in (self.a, self.b, self.worker) for line in p.lines() if line.strip()]


def _intents_without_quiet_hours(workdir: Path) -> Path:
    """A copy of ``intents/`` whose quiet hours allow every minute but the last of the day."""
    import shutil

    import yaml

    target = workdir / "intents"
    shutil.copytree(ROOT / "intents", target, dirs_exist_ok=True)
    business = target / "business.yaml"
    data = yaml.safe_load(business.read_text())
    data["quiet_hours"] = {**data.get("quiet_hours", {}), "start": "00:00", "end": "23:59", "channels": {},
                           "us_states": False}
    business.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return target


_numbers = itertools.count(random.randrange(1_000_000, 8_000_000))


def new_user() -> str:
    """A fresh US number (never one of Twilio's magic test numbers)."""
    return f"+1415{next(_numbers):07d}"


@dataclass
class Sent:
    """One message and what became of it."""

    user: str
    form: dict[str, str]
    opted_out: bool = False  # sent after the user's STOP was acknowledged
    acked: bool = False
    statuses: list[int] = field(default_factory=list)  # 0: no HTTP answer
    twiml: list[str] = field(default_factory=list)


@dataclass
class Report:
    """The numbers one scenario prints and asserts."""

    name: str
    sent: int = 0
    acked: int = 0
    not_acked: int = 0
    lost: int = 0
    duplicated: int = 0
    opted_out_answered: int = 0
    server_errors: int = 0
    no_answer: int = 0
    details: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"chaos {self.name}: sent={self.sent} acknowledged={self.acked} lost={self.lost} "
                f"duplicated={self.duplicated} opted_out_answered={self.opted_out_answered} "
                f"5xx={self.server_errors} no_http_answer={self.no_answer} never_acknowledged={self.not_acked}")


class Load:
    """Signed webhooks to the cluster, retried like Twilio, and the books on them."""

    def __init__(self, cluster: Cluster, http: httpx.AsyncClient) -> None:
        self.cluster = cluster
        self.http = http
        self.signer = WebhookClient(http, auth_token=AUTH_TOKEN, public_base_url=PUBLIC_URL)
        self.sent: list[Sent] = []
        self._turn = itertools.count()

    def message(self, user: str, body: str = QUESTION, *, channel: Channel = Channel.SMS) -> Sent:
        sent = Sent(user=user, form=inbound_form(channel, user, BOT_NUMBER, body))
        self.sent.append(sent)
        return sent

    async def deliver(self, sent: Sent, *, primary: int | None = None, patience: float = 90.0) -> Sent:
        """POST until acknowledged: primary, then the fallback, then again (Twilio's retries)."""
        body, headers = self.signer.signed("/twilio/messages", sent.form)
        first = next(self._turn) if primary is None else primary
        deadline = time.monotonic() + patience
        for attempt in itertools.count():
            server = self.cluster.servers[(first + attempt) % 2]
            try:
                resp = await self.http.post(server.url + "/twilio/messages", content=body, headers=headers,
                                            timeout=15.0)
            except httpx.HTTPError:
                sent.statuses.append(0)
            else:
                sent.statuses.append(resp.status_code)
                if 200 <= resp.status_code < 300:
                    sent.acked = True
                    sent.twiml.extend(text for text, _ in parse_twiml(resp.text))
                    return sent
            if time.monotonic() > deadline:
                return sent
            await asyncio.sleep(min(0.2 * (attempt + 1), 2.0))
        raise AssertionError("unreachable")

    async def conversation(self, user: str, bodies: list[str], *, channel: Channel = Channel.SMS,
                           pause: float = 0.0) -> None:
        """One user texting, each message after the last was acknowledged (a person's pace)."""
        for body in bodies:
            await self.deliver(self.message(user, body, channel=channel))
            if pause:
                await asyncio.sleep(pause)

    async def opted_out_user(self, channel: Channel = Channel.SMS, *, later: int = 3, pause: float = 0.3) -> str:
        """Asks, opts out, asks again ``later`` times (none may be answered), and a retry of the first."""
        user = new_user()
        first = await self.deliver(self.message(user, channel=channel))
        await self.deliver(self.message(user, "STOP", channel=channel))
        for _ in range(later):
            again = self.message(user, channel=channel)
            again.opted_out = True
            await self.deliver(again)
            await asyncio.sleep(pause)
        # Twilio retries the first message after the STOP: its cached answer may not be served.
        retry = Sent(user=user, form=first.form, opted_out=True)
        self.sent.append(retry)
        await self.deliver(retry)
        return user

    # -- the books --------------------------------------------------------------------------

    def _tally(self, user: str) -> tuple[int, int, int]:
        """(acknowledged questions owed an answer, hours answers received, answers after STOP)."""
        mine = [s for s in self.sent if s.user == user]
        # A retried message shares its first delivery's MessageSid: it is owed one answer in all.
        owed = len({s.form["MessageSid"] for s in mine
                    if s.acked and not s.opted_out and s.form.get("Body") == QUESTION})
        # Deliveries of one MessageSid each carry the same cached answer; Twilio
        # passes on the answer to the delivery it got: count one per MessageSid.
        per_sid: dict[str, int] = {}
        for s in mine:
            if not s.opted_out:
                sid = s.form["MessageSid"]
                per_sid[sid] = max(per_sid.get(sid, 0), sum(1 for t in s.twiml if is_hours(t)))
        after_stop = [t for s in mine if s.opted_out for t in s.twiml if is_hours(t)]
        rest = [t for t in self.cluster.rest_answers(user) if is_hours(t)]
        return owed, sum(per_sid.values()) + len(rest), len(after_stop)

    async def settle(self, *, within: float = 120.0) -> None:
        """Wait until every acknowledged question is answered (REST answers may come late)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if all(received >= owed for owed, received, _ in map(self._tally, self.users())):
                await asyncio.sleep(3.0)  # and a little longer: a duplicate would show now
                return
            await asyncio.sleep(0.5)

    def users(self) -> list[str]:
        return sorted({s.user for s in self.sent})

    def report(self, name: str) -> Report:
        report = Report(name=name, sent=len(self.sent))
        for s in self.sent:
            report.acked += s.acked
            report.not_acked += not s.acked
            report.server_errors += sum(1 for status in s.statuses if status >= 500)
            report.no_answer += s.statuses.count(0)
        for user in self.users():
            owed, received, after_stop = self._tally(user)
            stopped = any(s.user == user and s.opted_out for s in self.sent)
            if stopped:
                # Opted-out users were owed exactly their first question's answer.
                extra = max(0, received - 1)
                report.opted_out_answered += extra + after_stop
                if owed and not received:
                    report.lost += 1
                    report.details.append(f"{user}: first question acknowledged, never answered (then STOP)")
                if extra:
                    report.details.append(f"{user}: answered {extra} times after STOP")
                continue
            if received < owed:
                report.lost += owed - received
                report.details.append(f"{user}: {owed} acknowledged, {received} answered")
            elif received > owed:
                report.duplicated += received - owed
                report.details.append(f"{user}: {owed} acknowledged, {received} answers")
        print(report.line(), flush=True)
        for detail in report.details[:20]:
            print(f"  {detail}", flush=True)
        return report


def metric(text: str, name: str) -> float:
    """The sum of every series of ``name`` in a Prometheus text answer."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in "{ "):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def metrics_of(http: httpx.AsyncClient, servers: list[BotProcess], name: str) -> float:
    total = 0.0
    for server in servers:
        total += metric((await http.get(server.url + "/metrics", timeout=10)).text, name)
    return total


def json_lines_only(lines: list[str]) -> list[str]:
    """The lines that are not one JSON object each (should be none)."""
    import json

    bad = []
    for line in lines:
        try:
            parsed: Any = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if not isinstance(parsed, dict):
            bad.append(line)
    return bad

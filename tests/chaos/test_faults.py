"""Faults under load against real processes: nothing acknowledged is lost, nothing answered twice.

Each scenario prints its numbers (``chaos <name>: sent=... lost=... duplicated=... 5xx=...``;
run with ``-s`` to see them) and asserts 0 lost, 0 duplicated, 0 answers to
opted-out users. See tests/chaos/harness.py for the cluster and the books.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Awaitable, Callable

import httpx
import pytest

from bot.messages import Channel
from tests.chaos.harness import QUESTION, Cluster, Load, Report, Sent, json_lines_only, metrics_of, new_user
from tests.support.processes import BOT

pytestmark = pytest.mark.chaos


def check(report: Report) -> None:
    assert report.lost == 0, report.details
    assert report.duplicated == 0, report.details
    assert report.opted_out_answered == 0, report.details


async def under_load(cluster: Cluster, fault: Callable[[], Awaitable[None]], *, users: int = 10,
                     questions: int = 4) -> Load:
    """Users texting (and two who opt out) while ``fault`` happens; then wait for every answer."""
    async with httpx.AsyncClient() as http:
        load = Load(cluster, http)
        texting = [load.conversation(new_user(), [QUESTION] * questions, pause=0.3) for _ in range(users)]
        stopping = [load.opted_out_user(Channel.SMS), load.opted_out_user(Channel.WHATSAPP)]
        await asyncio.gather(*texting, *stopping, fault())
        await load.settle()
        return load


def test_concurrent_retries_across_processes_run_one_turn(cluster: Cluster) -> None:
    async def scenario() -> tuple[Report, float, float, list[list[str]]]:
        async with httpx.AsyncClient() as http:
            load = Load(cluster, http)
            turns = await metrics_of(http, cluster.servers, "bot_turns_total")
            duplicates = await metrics_of(http, cluster.servers, "bot_duplicate_deliveries_total")
            first = load.message(new_user())
            copies = [first] + [Sent(user=first.user, form=first.form) for _ in range(19)]
            load.sent.extend(copies[1:])
            await asyncio.gather(*(load.deliver(c, primary=i % 2) for i, c in enumerate(copies)))
            await load.settle()
            turns = await metrics_of(http, cluster.servers, "bot_turns_total") - turns
            duplicates = await metrics_of(http, cluster.servers, "bot_duplicate_deliveries_total") - duplicates
            from_b = [c.twiml for i, c in enumerate(copies) if i % 2 == 1 and c.statuses[:1] == [200]]
            return load.report("20 concurrent retries over 2 processes"), turns, duplicates, from_b

    report, turns, duplicates, from_b = asyncio.run(scenario())
    print(f"  turns run: {turns:g}, answered from cache: {duplicates:g}")
    check(report)
    assert turns == 1 and duplicates == 19
    assert all(answer == from_b[0] for answer in from_b)  # byte for byte the same answer


def test_a_burst_to_one_conversation_answers_every_message_once(cluster: Cluster) -> None:
    async def scenario() -> Report:
        async with httpx.AsyncClient() as http:
            load = Load(cluster, http)
            user = new_user()
            burst = [load.message(user) for _ in range(20)]
            await asyncio.gather(*(load.deliver(s, primary=i % 2) for i, s in enumerate(burst)))
            await load.settle()
            return load.report("burst of 20 to one conversation")

    check(asyncio.run(scenario()))


def test_redis_hangs_under_load(cluster: Cluster) -> None:
    async def hang() -> None:
        # Early, and under ten questions a user (about 3 s of texting): on a quiet machine four questions
        # could all be answered before a later hang began, and nothing would meet it.
        await asyncio.sleep(0.5)
        cluster.redis.pause()  # SIGSTOP: connections open, nothing answered
        try:
            await asyncio.sleep(5.0)
        finally:
            cluster.redis.resume()

    load = asyncio.run(under_load(cluster, hang, questions=10))
    report = load.report("redis SIGSTOP 5 s under load")
    check(report)
    assert report.server_errors > 0  # the hang was answered 503 (Twilio's fallback), not an empty 200


def test_redis_shutdown_and_restart_under_load(cluster: Cluster) -> None:
    async def restart() -> None:
        await asyncio.sleep(1.0)
        await asyncio.to_thread(cluster.redis.shutdown)
        await asyncio.sleep(3.0)
        await asyncio.to_thread(cluster.redis.launch)

    check(asyncio.run(under_load(cluster, restart)).report("redis SHUTDOWN and restart under load"))


def test_kill_9_of_a_server_under_load(cluster: Cluster) -> None:
    async def kill() -> None:
        await asyncio.sleep(1.0)
        cluster.a.kill9()  # A answers late: it dies holding acknowledged turns

    report = asyncio.run(under_load(cluster, kill, questions=10)).report("kill -9 of server A under load")
    check(report)
    assert not cluster.a.alive and report.no_answer > 0  # it died mid-load: its requests got no answer


def test_kill_9_of_the_worker_mid_broadcast(cluster: Cluster, tmp_path: object) -> None:
    from pathlib import Path

    recipients = [new_user() for _ in range(20)]

    async def opt_out(users: list[str]) -> None:
        async with httpx.AsyncClient() as http:
            load = Load(cluster, http)
            for user in users:
                await load.deliver(load.message(user, "STOP"))

    stopped = recipients[:3]
    asyncio.run(opt_out(stopped))
    csv = Path(str(tmp_path)) / "recipients.csv"
    csv.write_text("to,name\n" + "".join(f"{u},Friend\n" for u in recipients))
    queued = subprocess.run(
        [str(BOT), "broadcast", str(csv), "--template", "welcome_back", "--campaign", "chaos", "--rate", "2",
         "--no-wait"], env=cluster.worker.env, capture_output=True, text=True, timeout=300, check=False)
    assert queued.returncode == 0, queued.stdout + queued.stderr

    def received() -> dict[str, int]:
        return {u: sum(1 for body in cluster.rest_answers(u) if "update for you" in body) for u in recipients}

    deadline = time.monotonic() + 60
    while sum(received().values()) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    cluster.worker.kill9()  # mid-broadcast: some sent, one perhaps running, most still queued
    sent_before = sum(received().values())
    cluster.worker.launch()
    deadline = time.monotonic() + 150
    while sum(received().values()) < len(recipients) - len(stopped) and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(3)  # a double send would show now
    counts = received()
    lost = sum(1 for u in recipients[3:] if counts[u] == 0)
    duplicated = sum(counts[u] - 1 for u in recipients if counts[u] > 1)
    opted_out = sum(counts[u] for u in stopped)
    print(f"chaos kill -9 of the worker mid-broadcast: recipients={len(recipients)} "
          f"sent_before_kill={sent_before} lost={lost} duplicated={duplicated} opted_out_answered={opted_out}")
    assert 0 < sent_before < len(recipients) - len(stopped)
    assert lost == 0 and duplicated == 0 and opted_out == 0


def test_every_process_logged_json_lines_only(cluster: Cluster) -> None:
    bad = json_lines_only(cluster.log_lines())
    assert bad == [], bad[:5]

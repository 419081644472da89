"""``bot worker`` survives Redis going away: it logs, reconnects with backoff, and resumes."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.processes import BOT, BotProcess, RedisProcess, bot_env

pytestmark = pytest.mark.slow  # starts `bot worker` (it trains the classifier first)


def redis_cli(redis: RedisProcess, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(redis.port), *args], capture_output=True, text=True,
                          check=False, timeout=10).stdout.strip()


def health_keys(redis: RedisProcess) -> list[str]:
    return [k for k in redis_cli(redis, "--scan", "--pattern", "bot:worker:health:*").splitlines() if k]


def wait_for(predicate: object, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def check(env: dict[str, str]) -> int:
    """``bot worker --check``: the compose/Kubernetes probe."""
    return subprocess.run([str(BOT), "worker", "--check"], env=env, capture_output=True, check=False,
                          timeout=240).returncode  # importing the CLI is slow on a loaded machine


def test_worker_rides_out_a_redis_restart_and_refused_connections(tmp_path: Path) -> None:
    with RedisProcess.start() as redis:
        env = bot_env(TWILIO_ACCOUNT_SID=ACCOUNT_SID, TWILIO_AUTH_TOKEN=AUTH_TOKEN, REDIS_URL=redis.url,
                      ENVIRONMENT="test", ALLOW_TEST_ENVIRONMENT="true", LOG_JSON="true", LOG_LEVEL="INFO",
                      TWILIO_API_BASE_URL="http://127.0.0.1:9")
        worker = BotProcess(["worker"], env, tmp_path / "worker.log")
        worker.launch()
        try:
            wait_for(lambda: health_keys(redis), 240, "the worker's first health record (after training)")
            assert check(env) == 0

            redis.shutdown()  # refused connections from now on
            time.sleep(4)
            assert worker.alive, "\n".join(worker.lines())
            assert check(env) == 1  # the probe sees it: compose/Kubernetes would act on it

            redis.launch()  # same port, same data (append-only file)
            redis_cli(redis, "DEL", *health_keys(redis))  # whatever survived from before the outage
            wait_for(lambda: health_keys(redis), 60, "the worker to reconnect and record its health again")
            assert worker.alive and check(env) == 0
        finally:
            worker.stop()
    lines = [json.loads(line) for line in worker.lines() if line.strip()]  # every line is JSON
    reconnects = [line for line in lines if line["msg"] == "worker lost Redis; reconnecting"]
    assert reconnects, "the outage was logged"
    delays = [line["retry_in_seconds"] for line in reconnects]
    assert delays == sorted(delays) and (len(delays) == 1 or delays[0] < delays[-1])  # backing off
    assert worker.proc is not None and worker.proc.returncode == 0  # SIGTERM: a clean stop

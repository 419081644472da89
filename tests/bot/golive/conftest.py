"""A simulated Twilio account served on a real port, for the official SDK."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from bot.clock import FrozenClock
from devtools.simulator import Simulator
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PUBLIC_URL
from tests.support.servers import run_app


@dataclass
class Account:
    sim: Simulator
    base_url: str

    def env(self, **extra: str) -> dict[str, str]:
        """The environment `bot connect` / `bot doctor` run with: the SDK pointed at the simulator."""
        return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_API_BASE_URL": self.base_url, "PUBLIC_BASE_URL": PUBLIC_URL,
                "ENVIRONMENT": "test", "ALLOW_TEST_ENVIRONMENT": "true", "REDIS_URL": "", "LLM_MODEL": "", **extra}


@pytest.fixture
def account() -> Iterator[Account]:
    from devtools.simulator import create_simulator_app

    sim = Simulator(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                    clock=FrozenClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC)), seed=7)
    sim.account.add_number(BOT_NUMBER, sms_url="https://old-host.example.com/sms")
    with run_app(create_simulator_app(sim, close_on_shutdown=False)) as base_url:
        yield Account(sim, base_url)

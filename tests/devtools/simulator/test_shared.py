"""One simulator app per process (replay): each conversation's requests reach its own simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

from devtools.simulator import Simulator
from devtools.simulator.rules import API_VERSION
from devtools.simulator.shared import simulator_app_for
from tests.devtools.simulator.conftest import ACCOUNT_SID, BOT, USER, basic_auth

MESSAGES = f"/{API_VERSION}/Accounts/{ACCOUNT_SID}/Messages.json"
NUMBERS = f"/{API_VERSION}/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers.json"
CALLS = f"/{API_VERSION}/Accounts/{ACCOUNT_SID}/Calls.json"


@asynccontextmanager
async def closing(*sims: Simulator) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for sim in sims:
            await sim.aclose()
            await sim.http.aclose()


def client(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=simulator_app_for(sim)),
                             base_url="https://api.twilio.com", headers=basic_auth())


async def test_each_simulator_sees_only_its_own_messages_numbers_and_calls(
    make_sim: Callable[..., Simulator],
) -> None:
    first, second = make_sim(), make_sim()
    second.account.add_number("+15005550009")
    async with client(first) as one, client(second) as two, closing(first, second):
        sent = await one.post(MESSAGES, data={"To": USER, "From": BOT, "Body": "only in the first"})
        assert sent.status_code == 201
        called = await two.post(CALLS, data={"To": USER, "From": BOT, "Twiml": "<Response><Say>hi</Say></Response>"})
        assert called.status_code == 201

        assert [m["body"] for m in (await one.get(MESSAGES)).json()["messages"]] == ["only in the first"]
        assert (await two.get(MESSAGES)).json()["messages"] == []
        assert [c["sid"] for c in (await two.get(CALLS)).json()["calls"]] == [called.json()["sid"]]
        assert (await one.get(CALLS)).json()["calls"] == []
        numbers = {n["phone_number"] for n in (await two.get(NUMBERS)).json()["incoming_phone_numbers"]}
        assert "+15005550009" in numbers
        assert "+15005550009" not in {
            n["phone_number"] for n in (await one.get(NUMBERS)).json()["incoming_phone_numbers"]
        }
    assert [m.body for m in first.messages()] == ["only in the first"]
    assert second.messages() == []


async def test_a_simulator_checks_its_own_credentials(make_sim: Callable[..., Simulator]) -> None:
    sim = make_sim(auth_token="another-token")
    async with client(sim) as api, closing(sim):
        denied = await api.get(MESSAGES)
    assert denied.status_code == 401 and denied.json()["code"] == 20003

"""The record part the ledger and the job stores share: same contract on memory and Redis."""

from __future__ import annotations

import asyncio

import pytest

from bot.storage import Records, Stores


@pytest.fixture(params=["ledger", "jobs"])
def records(request: pytest.FixtureRequest, stores: Stores) -> Records:
    found: Records = getattr(stores, request.param)
    return found


async def test_set_get_delete_and_only_if_absent(records: Records) -> None:
    assert await records.get("x") is None
    assert await records.set("x", "1", only_if_absent=True)
    assert not await records.set("x", "2", only_if_absent=True)
    assert await records.get("x") == "1"
    assert await records.set("x", "3")  # a plain set overwrites
    assert await records.get("x") == "3"
    await records.delete("x")
    assert await records.get("x") is None
    await records.delete("x")  # deleting nothing is fine
    await records.ping()


async def test_values_expire(records: Records) -> None:
    assert await records.set("y", "v", ttl=0.2)
    ttl = await records.ttl("y")
    assert ttl is not None and 0 < ttl <= 0.2
    assert await records.ttl("missing") is None
    await records.set("forever", "v")
    assert await records.ttl("forever") is None
    await asyncio.sleep(0.3)
    assert await records.get("y") is None
    assert await records.set("y", "again", only_if_absent=True)  # expired counts as absent


async def test_values_are_text_round_trip(records: Records) -> None:
    value = '{"body":"Café ✨ at 3pm","n":1}'
    await records.set("out:{abc}", value)
    assert await records.get("out:{abc}") == value

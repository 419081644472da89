"""One contract for every LedgerStore: memory and Redis behave the same."""

from __future__ import annotations

import asyncio
import json

from bot.storage import LedgerStore, Stores


def _ledger(stores: Stores) -> LedgerStore:
    return stores.ledger


async def test_advance_is_forward_only_and_idempotent(stores: Stores) -> None:
    ledger = _ledger(stores)
    first = await ledger.advance("status:{SM1}", "queued", 1, ttl=60, data="q")
    assert (first.applied, first.first_seen, first.state, first.data) == (True, True, "queued", "q")
    delivered = await ledger.advance("status:{SM1}", "delivered", 4, ttl=60, data="d")
    assert (delivered.applied, delivered.first_seen, delivered.state) == (True, True, "delivered")
    # A late report of an earlier state: seen for the first time, never applied.
    late = await ledger.advance("status:{SM1}", "sent", 3, ttl=60, data="s")
    assert (late.applied, late.first_seen, late.state, late.data) == (False, True, "delivered", "d")
    # A repeat of the same state: neither.
    again = await ledger.advance("status:{SM1}", "delivered", 4, ttl=60, data="x")
    assert (again.applied, again.first_seen, again.state, again.data) == (False, False, "delivered", "d")
    ttl = await ledger.ttl("status:{SM1}")
    assert ttl is not None and 0 < ttl <= 60
    record = json.loads(await ledger.get("status:{SM1}") or "{}")
    assert (record["state"], record["data"]) == ("delivered", "d")
    assert sorted(record["seen"]) == ["delivered", "queued", "sent"]
    await ledger.delete("status:{SM1}")
    assert (await ledger.advance("status:{SM1}", "sent", 3, ttl=60)).applied


async def test_advance_expires(stores: Stores) -> None:
    ledger = _ledger(stores)
    await ledger.advance("status:{SM2}", "delivered", 4, ttl=0.2)
    await asyncio.sleep(0.3)
    assert (await ledger.advance("status:{SM2}", "queued", 1, ttl=60)).applied


async def test_concurrent_reports_of_one_state_count_once(stores: Stores) -> None:
    ledger = _ledger(stores)
    results = await asyncio.gather(*(ledger.advance("status:{SM3}", "delivered", 4, ttl=60) for _ in range(10)))
    assert sum(r.first_seen for r in results) == 1
    assert sum(r.applied for r in results) == 1


async def test_tally_counts_each_member_once(stores: Stores) -> None:
    ledger = _ledger(stores)
    key = "campaign:{spring}"
    assert await ledger.tallies(key) == {}
    assert await ledger.tally(key, "+14155550001", "sent", ttl=60)
    assert await ledger.tally(key, "+14155550002", "sent", ttl=60)
    assert await ledger.tally(key, "+14155550003", "skipped:opted_out", ttl=60)
    assert not await ledger.tally(key, "+14155550001", "failed:21211", ttl=60)
    assert await ledger.tallies(key) == {"sent": 2, "skipped:opted_out": 1}
    assert await ledger.tallies("campaign:{other}") == {}


async def test_tallies_expire_together(stores: Stores) -> None:
    ledger = _ledger(stores)
    assert await ledger.tally("campaign:{short}", "a", "sent", ttl=0.2)
    await asyncio.sleep(0.3)
    assert await ledger.tallies("campaign:{short}") == {}
    assert await ledger.tally("campaign:{short}", "a", "sent", ttl=60)  # the member set expired too

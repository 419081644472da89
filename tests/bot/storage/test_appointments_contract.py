"""One contract for every AppointmentStore: memory and Redis behave the same."""

from __future__ import annotations

import asyncio

import pytest

from bot.storage import AppointmentStore, Stores

DAY = "+15005550006:2026-03-03"
ONE = ["default"]
CHAIRS = ["chair-1", "chair-2"]


@pytest.fixture
def appts(stores: Stores) -> AppointmentStore:
    return stores.appointments


def spans(holds: list) -> list[tuple[str, str, float, float]]:  # type: ignore[type-arg]
    return [(h.ident, h.resource, h.start, h.end) for h in holds]


async def test_claims_on_one_resource_never_overlap(appts: AppointmentStore) -> None:
    assert await appts.claim(DAY, "a1", 900.0, 960.0, ONE) == "default"
    assert await appts.claim(DAY, "b2", 930.0, 990.0, ONE) is None  # overlaps a1
    assert await appts.claim(DAY, "b2", 880.0, 901.0, ONE) is None
    assert await appts.claim(DAY, "b2", 960.0, 990.0, ONE) == "default"  # back to back is fine
    assert await appts.claim(DAY, "c3", 800.0, 900.0, ONE) == "default"
    assert spans(await appts.holds(DAY)) == [
        ("c3", "default", 800.0, 900.0), ("a1", "default", 900.0, 960.0), ("b2", "default", 960.0, 990.0)]
    assert await appts.holds("+15005550006:2026-03-04") == []


async def test_a_claim_takes_the_first_free_resource(appts: AppointmentStore) -> None:
    assert await appts.claim(DAY, "a1", 900.0, 960.0, CHAIRS) == "chair-1"
    assert await appts.claim(DAY, "b2", 930.0, 990.0, CHAIRS) == "chair-2"  # chair-1 is busy
    assert await appts.claim(DAY, "c3", 950.0, 970.0, CHAIRS) is None  # both are
    assert await appts.claim(DAY, "c3", 960.0, 990.0, CHAIRS) == "chair-1"  # chair-1 free again at 960
    # Only the resources named count: a service only chair-2 can do waits for chair-2.
    assert await appts.claim(DAY, "d4", 990.0, 1000.0, ["chair-2"]) == "chair-2"
    assert await appts.claim(DAY, "e5", 0.0, 10.0, []) is None
    assert [h.resource for h in await appts.holds(DAY)] == ["chair-1", "chair-2", "chair-1", "chair-2"]


async def test_a_claim_by_the_same_name_moves_it(appts: AppointmentStore) -> None:
    assert await appts.claim(DAY, "a1", 900.0, 960.0, ONE)
    assert await appts.claim(DAY, "b2", 1000.0, 1060.0, ONE)
    assert await appts.claim(DAY, "a1", 930.0, 990.0, ONE)  # overlaps only its old self
    assert not await appts.claim(DAY, "a1", 990.0, 1010.0, ONE)  # would overlap b2: a1 stays
    assert await appts.claim(DAY, "b2", 500.0, 560.0, ONE)  # moved earlier than its old start
    assert [(h.ident, h.start) for h in await appts.holds(DAY)] == [("b2", 500.0), ("a1", 930.0)]
    # A move may change resource: its old hold goes whichever it was on.
    assert await appts.claim(DAY, "c3", 930.0, 990.0, ["other"]) == "other"
    assert await appts.claim(DAY, "c3", 2000.0, 2060.0, ONE) == "default"
    assert [h.ident for h in await appts.holds(DAY)] == ["b2", "a1", "c3"]
    await appts.release(DAY, "a1")
    await appts.release(DAY, "zz")
    assert [h.ident for h in await appts.holds(DAY)] == ["b2", "c3"]
    assert await appts.claim(DAY, "d4", 930.0, 990.0, ONE)


async def test_names_with_the_separator_are_refused(appts: AppointmentStore) -> None:
    with pytest.raises(ValueError, match="may not"):
        await appts.claim(DAY, "a|1", 0.0, 1.0, ONE)
    with pytest.raises(ValueError, match="may not"):
        await appts.claim(DAY, "a1", 0.0, 1.0, ["chair|1"])


async def test_concurrent_claims_of_one_slot_let_exactly_one_win_per_resource(appts: AppointmentStore) -> None:
    won = await asyncio.gather(*(appts.claim(DAY, f"p{n}", 900.0, 960.0, ONE) for n in range(20)))
    assert sum(w is not None for w in won) == 1
    other = "+15005550006:2026-03-05"
    won = await asyncio.gather(*(appts.claim(other, f"p{n}", 900.0, 960.0, CHAIRS) for n in range(20)))
    assert sorted(w for w in won if w is not None) == CHAIRS  # parallel bookings fill both chairs


async def test_records_round_trip_and_expire(appts: AppointmentStore) -> None:
    await appts.put("a1", '{"id":"a1","name":"Zoë"}', ttl=60)
    await appts.put("b2", '{"id":"b2"}', ttl=0.2)
    assert await appts.get("a1") == '{"id":"a1","name":"Zoë"}'
    assert await appts.get_many(["a1", "missing", "b2"]) == ['{"id":"a1","name":"Zoë"}', None, '{"id":"b2"}']
    assert await appts.get_many([]) == []
    await asyncio.sleep(0.3)
    assert await appts.get("b2") is None
    await appts.delete("a1")
    assert await appts.get("a1") is None


async def test_indexes_find_by_owner_and_by_start(appts: AppointmentStore) -> None:
    ana, ben = "sms:+15005550006:+14155550001", "sms:+15005550006:+14155550002"
    base = 1_772_000_000.0
    await appts.index(ana, "a1", base + 3600)
    await appts.index(ana, "a2", base + 60)
    await appts.index(ben, "b1", base + 600)
    await appts.index(ben, "b2", base + 86_400)
    assert await appts.owned(ana, base, float("inf")) == ["a2", "a1"]
    assert await appts.owned(ana, base + 100, float("inf")) == ["a1"]
    assert await appts.owned("sms:nobody", 0, float("inf")) == []
    # Due: every owner's, by start, across minute buckets; bounds are inclusive.
    assert await appts.due(base, base + 3600) == ["a2", "b1", "a1"]
    assert await appts.due(base + 61, base + 3599) == ["b1"]
    assert await appts.due(base, base + 2 * 86_400) == ["a2", "b1", "a1", "b2"]
    await appts.unindex(ana, "a2", base + 60)
    assert await appts.owned(ana, base, float("inf")) == ["a1"]
    assert await appts.due(base, base + 3600) == ["b1", "a1"]
    # A move: unindex the old start, index the new one; found once, at the new time.
    await appts.unindex(ben, "b1", base + 600)
    await appts.index(ben, "b1", base + 7200)
    assert await appts.due(base, base + 86_400) == ["a1", "b1", "b2"]
    assert await appts.owned(ben, base, float("inf")) == ["b1", "b2"]


async def test_the_day_log_keeps_every_appointment_of_a_day(appts: AppointmentStore) -> None:
    base = 1_772_000_000.0
    await appts.log_day("2026-03-03", "b2", base + 600)
    await appts.log_day("2026-03-03", "a1", base + 60)
    await appts.log_day("2026-03-04", "c3", base + 86_400)
    await appts.log_day("2026-03-03", "a1", base + 60)  # logged again: once
    assert await appts.day_log("2026-03-03") == ["a1", "b2"]
    assert await appts.day_log("2026-03-04") == ["c3"]
    assert await appts.day_log("2026-03-05") == []
    # Moved to another day: listed there only.
    await appts.unlog_day("2026-03-03", "b2")
    await appts.log_day("2026-03-04", "b2", base + 86_000)
    assert await appts.day_log("2026-03-03") == ["a1"]
    assert await appts.day_log("2026-03-04") == ["b2", "c3"]
    await appts.unlog_day("2026-03-09", "zz")  # nothing there: no error

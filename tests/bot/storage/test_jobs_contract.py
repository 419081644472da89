"""One contract for every JobStore: memory and Redis behave the same."""

from __future__ import annotations

import asyncio

from bot.storage import Stores


async def test_next_slot_spaces_reservations(stores: Stores) -> None:
    jobs = stores.jobs
    assert await jobs.next_slot("pace:{+15005550006}", 0.5) == 0
    waits = [await jobs.next_slot("pace:{+15005550006}", 0.5) for _ in range(3)]
    assert [round(w * 2) for w in waits] == [1, 2, 3]  # 0.5 s apart, queued behind each other
    assert await jobs.next_slot("pace:{+15005550007}", 0.5) == 0  # another sender: its own pace
    await asyncio.sleep(0.3)
    assert 1.1 < await jobs.next_slot("pace:{+15005550006}", 0.5) < 1.8


async def test_concurrent_reservations_never_share_a_slot(stores: Stores) -> None:
    jobs = stores.jobs
    waits = await asyncio.gather(*(jobs.next_slot("pace:{+15005550008}", 1.0) for _ in range(8)))
    assert sorted(round(w) for w in waits) == list(range(8))


async def test_an_idle_pace_starts_over(stores: Stores) -> None:
    jobs = stores.jobs
    await jobs.next_slot("pace:{+15005550009}", 0.1)
    await jobs.next_slot("pace:{+15005550009}", 0.1)
    await asyncio.sleep(0.3)
    assert await jobs.next_slot("pace:{+15005550009}", 0.1) == 0

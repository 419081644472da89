"""One contract for every ConversationStore: memory and Redis behave the same."""

from __future__ import annotations

import asyncio
import base64
import json
import zlib

from bot.messages import Channel
from bot.storage import ConversationKey, ConversationState, ConversationStore, HistoryEntry, TurnStatus

KEY = ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550123")
OTHER = ConversationKey(Channel.WHATSAPP, bot="+15005550006", user="+14155550123")


async def _commit(
    store: ConversationStore,
    key: ConversationKey,
    sid: str,
    token: str,
    state: ConversationState,
    answer: str = "<Response/>",
    **kw: object,
) -> bool:
    return await store.commit_turn(
        key,
        sid,
        token,
        state=state,
        answer=answer,
        state_ttl=kw.pop("state_ttl", 60),  # type: ignore[arg-type]
        answer_ttl=60,
        **kw,
    )  # type: ignore[arg-type]


async def test_first_turn_acquires_with_no_state(store: ConversationStore) -> None:
    start = await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    assert start.status is TurnStatus.ACQUIRED
    assert start.state is None
    assert start.opted_out is False


async def test_commit_saves_state_and_answer_for_retries(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    state = ConversationState.new(KEY)
    state.flow, state.slots = "book", {"service": "cleaning"}
    state.remember(HistoryEntry(1.0, "user", "hi", "greet"), limit=20)
    assert await _commit(store, KEY, "SM1", "t1", state, answer="<Response>A</Response>")

    loaded = await store.load(KEY)
    assert loaded is not None
    assert loaded.flow == "book" and loaded.slots == {"service": "cleaning"}
    assert loaded.history[0].text == "hi"

    retry = await store.begin_turn(KEY, "SM1", "t2", lease_seconds=5)
    assert retry.status is TurnStatus.DUPLICATE
    assert retry.answer == "<Response>A</Response>"


async def test_a_retry_after_the_answer_expired_is_still_a_duplicate(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    assert await store.commit_turn(
        KEY,
        "SM1",
        "t1",
        state=ConversationState.new(KEY),
        answer="<Response>A</Response>",
        state_ttl=60,
        answer_ttl=1,
        seen_ttl=60,
    )
    assert (await store.begin_turn(KEY, "SM1", "t2", lease_seconds=5)).answer == "<Response>A</Response>"
    await asyncio.sleep(1.1)
    retry = await store.begin_turn(KEY, "SM1", "t3", lease_seconds=5)
    # The turn is not run again; its answer is gone, so the retry gets nothing.
    assert retry.status is TurnStatus.DUPLICATE and retry.answer == ""
    # Other messages of the conversation still run.
    assert (await store.begin_turn(KEY, "SM2", "t4", lease_seconds=5)).status is TurnStatus.ACQUIRED


async def test_seen_keeps_the_last_32_messages(store: ConversationStore) -> None:
    state = ConversationState.new(KEY)
    for n in range(40):
        assert (await store.begin_turn(KEY, f"SM{n}", f"t{n}", lease_seconds=5)).status is TurnStatus.ACQUIRED
        assert await store.commit_turn(
            KEY, f"SM{n}", f"t{n}", state=state, answer=f"<Response>{n}</Response>", state_ttl=60, answer_ttl=60
        )
    for n in (0, 7, 8, 39):
        retry = await store.begin_turn(KEY, f"SM{n}", "again", lease_seconds=5)
        assert retry.status is TurnStatus.DUPLICATE and retry.answer == f"<Response>{n}</Response>"
    seen = await store.get(KEY.part("seen"))
    assert seen is not None and len(seen) == 32 * 8


async def test_a_long_history_is_stored_compressed_and_reads_back(store: ConversationStore) -> None:
    state = ConversationState.new(KEY)
    state.data = {"handoff": {"since": 1.5}}
    for n in range(40):
        reply = "We're open Mon-Fri 8am-5pm and Sat 9am-1pm. Want to book? Reply BOOK. ✨"
        state.remember(
            HistoryEntry(
                1000.0 + n,
                "user" if n % 2 == 0 else "bot",
                f"hours? #{n}" if n % 2 == 0 else reply,
                "hours" if n % 2 == 0 else None,
            ),
            40,
        )
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    assert await _commit(store, KEY, "SM1", "t1", state)
    raw = await store.get(KEY.part("state"))
    assert raw is not None and raw.startswith("z:")
    plain = zlib.decompress(base64.b64decode(raw[2:]))
    assert len(raw) < len(plain) / 3
    loaded = await store.load(KEY)
    assert loaded == state
    assert (await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)).state == state


async def test_same_message_in_flight_is_not_run_twice(store: ConversationStore) -> None:
    first = await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    second = await store.begin_turn(KEY, "SM1", "t2", lease_seconds=5)
    assert first.status is TurnStatus.ACQUIRED
    assert second.status is TurnStatus.IN_FLIGHT


async def test_turns_queue_in_arrival_order(store: ConversationStore) -> None:
    assert (await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)).status is TurnStatus.ACQUIRED
    assert (await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)).status is TurnStatus.QUEUED
    assert (await store.begin_turn(KEY, "SM3", "t3", lease_seconds=5)).status is TurnStatus.QUEUED
    # Other conversations are not blocked.
    assert (await store.begin_turn(OTHER, "SM9", "t9", lease_seconds=5)).status is TurnStatus.ACQUIRED

    assert await _commit(store, KEY, "SM1", "t1", ConversationState.new(KEY))
    # The third still waits: the second arrived first.
    assert (await store.begin_turn(KEY, "SM3", "t3", lease_seconds=5)).status is TurnStatus.QUEUED
    assert (await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)).status is TurnStatus.ACQUIRED


async def test_crashed_holder_is_skipped_after_its_lease(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "dead", lease_seconds=0.2)
    assert (await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)).status is TurnStatus.QUEUED
    await asyncio.sleep(0.3)
    start = await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)
    assert start.status is TurnStatus.ACQUIRED
    # The dead holder's late commit writes nothing.
    assert not await _commit(store, KEY, "SM1", "dead", ConversationState.new(KEY))
    assert await store.load(KEY) is None
    # And its message can run again (a Twilio retry), since it was never answered.
    assert await _commit(store, KEY, "SM2", "t2", ConversationState.new(KEY))
    assert (await store.begin_turn(KEY, "SM1", "t3", lease_seconds=5)).status is TurnStatus.ACQUIRED


async def test_abort_writes_nothing_and_lets_the_next_run(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)
    await store.abort_turn(KEY, "SM1", "t1")
    assert await store.load(KEY) is None
    assert (await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)).status is TurnStatus.ACQUIRED
    # The aborted message may be retried and then runs.
    await store.abort_turn(KEY, "SM2", "t2")
    assert (await store.begin_turn(KEY, "SM1", "t3", lease_seconds=5)).status is TurnStatus.ACQUIRED


async def test_opt_out_is_stored_apart_and_survives_state_expiry(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    assert await _commit(store, KEY, "SM1", "t1", ConversationState.new(KEY), opted_out=True, state_ttl=1)
    assert await store.is_opted_out(KEY)
    assert not await store.is_opted_out(OTHER)
    assert await store.ttl(KEY.opt_out_key) is None  # never expires
    await asyncio.sleep(1.1)
    assert await store.load(KEY) is None  # the conversation expired
    assert await store.is_opted_out(KEY)  # the opt-out did not
    start = await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)
    assert start.opted_out is True
    await store.set_opted_out(KEY, False)
    assert not await store.is_opted_out(KEY)
    # The flag is a plain key too (the sender reads it with get_many).
    assert await store.get_many([KEY.opt_out_key]) == [None]
    await store.set_opted_out(KEY, True)
    assert await store.get_many([KEY.opt_out_key]) != [None]


async def test_state_ttl_is_respected(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    assert await _commit(store, KEY, "SM1", "t1", ConversationState.new(KEY), state_ttl=600)
    ttl = await store.ttl(KEY.part("state"))
    assert ttl is not None and 590 < ttl <= 600


async def test_primitives(store: ConversationStore) -> None:
    assert await store.get("x") is None
    assert await store.set("x", "1", only_if_absent=True)
    assert not await store.set("x", "2", only_if_absent=True)
    assert await store.get("x") == "1"
    assert await store.set("y", "v", ttl=0.2)
    ttl = await store.ttl("y")
    assert ttl is not None and 0 < ttl <= 0.2
    await asyncio.sleep(0.3)
    assert await store.get("y") is None
    await store.delete("x")
    assert await store.get("x") is None
    await store.ping()


async def test_sorted_index(store: ConversationStore) -> None:
    await store.index_add("idx", "b", 20)
    await store.index_add("idx", "a", 10)
    await store.index_add("idx", "c", 30)
    assert await store.index_range("idx", 10, 20) == ["a", "b"]
    await store.index_add("idx", "a", 25)  # re-adding moves it
    await store.index_remove("idx", "b")
    assert await store.index_range("idx", 0, 100) == ["a", "c"]
    assert await store.index_range("missing", 0, 100) == []


async def test_advance_is_forward_only_and_idempotent(store: ConversationStore) -> None:
    first = await store.advance("status:{SM1}", "queued", 1, ttl=60, data="q")
    assert (first.applied, first.first_seen, first.state, first.data) == (True, True, "queued", "q")
    delivered = await store.advance("status:{SM1}", "delivered", 4, ttl=60, data="d")
    assert (delivered.applied, delivered.first_seen, delivered.state) == (True, True, "delivered")
    # A late report of an earlier state: seen for the first time, never applied.
    late = await store.advance("status:{SM1}", "sent", 3, ttl=60, data="s")
    assert (late.applied, late.first_seen, late.state, late.data) == (False, True, "delivered", "d")
    # A repeat of the same state: neither.
    again = await store.advance("status:{SM1}", "delivered", 4, ttl=60, data="x")
    assert (again.applied, again.first_seen, again.state, again.data) == (False, False, "delivered", "d")
    ttl = await store.ttl("status:{SM1}")
    assert ttl is not None and 0 < ttl <= 60
    record = json.loads(await store.get("status:{SM1}") or "{}")
    assert (record["state"], record["data"]) == ("delivered", "d")
    assert sorted(record["seen"]) == ["delivered", "queued", "sent"]
    await store.delete("status:{SM1}")
    assert (await store.advance("status:{SM1}", "sent", 3, ttl=60)).applied


async def test_advance_expires(store: ConversationStore) -> None:
    await store.advance("status:{SM2}", "delivered", 4, ttl=0.2)
    await asyncio.sleep(0.3)
    assert (await store.advance("status:{SM2}", "queued", 1, ttl=60)).applied


async def test_tally_counts_each_member_once(store: ConversationStore) -> None:
    key = "campaign:{spring}"
    assert await store.tallies(key) == {}
    assert await store.tally(key, "+14155550001", "sent", ttl=60)
    assert await store.tally(key, "+14155550002", "sent", ttl=60)
    assert await store.tally(key, "+14155550003", "skipped:opted_out", ttl=60)
    assert not await store.tally(key, "+14155550001", "failed:21211", ttl=60)
    assert await store.tallies(key) == {"sent": 2, "skipped:opted_out": 1}
    assert await store.tallies("campaign:{other}") == {}


async def test_next_slot_spaces_reservations(store: ConversationStore) -> None:
    assert await store.next_slot("pace:{+15005550006}", 0.5) == 0
    waits = [await store.next_slot("pace:{+15005550006}", 0.5) for _ in range(3)]
    assert [round(w * 2) for w in waits] == [1, 2, 3]  # 0.5 s apart, queued behind each other
    assert await store.next_slot("pace:{+15005550007}", 0.5) == 0  # another sender: its own pace
    await asyncio.sleep(0.3)
    assert 1.1 < await store.next_slot("pace:{+15005550006}", 0.5) < 1.8


def test_keys_share_one_cluster_hash_tag() -> None:
    parts = [KEY.part("state"), KEY.part("queue"), KEY.part("msg:SM1"), KEY.opt_out_key]
    tags = {p[p.index("{") : p.index("}") + 1] for p in parts}
    assert tags == {"{sms:+15005550006:+14155550123}"}


async def test_get_many_reads_in_order(store: ConversationStore) -> None:
    await store.set("a", "1")
    await store.set("c", "3")
    assert await store.get_many(["a", "b", "c"]) == ["1", None, "3"]
    assert await store.get_many([]) == []


async def test_interval_claims_never_overlap(store: ConversationStore) -> None:
    day = "slots:{+15005550006}:2026-03-03"
    assert await store.interval_claim(day, "a1", 900.0, 960.0)
    assert not await store.interval_claim(day, "b2", 930.0, 990.0)  # overlaps a1
    assert not await store.interval_claim(day, "b2", 880.0, 901.0)
    assert await store.interval_claim(day, "b2", 960.0, 990.0)  # back to back is fine
    assert await store.interval_claim(day, "c3", 800.0, 900.0)
    ranged = await store.interval_range(day, float("-inf"), float("inf"))
    assert [(i.ident, i.start, i.end) for i in ranged] == [
        ("c3", 800.0, 900.0), ("a1", 900.0, 960.0), ("b2", 960.0, 990.0)]
    assert [i.ident for i in await store.interval_range(day, 900.0, 960.0)] == ["a1", "b2"]


async def test_interval_claim_by_the_same_name_moves_it(store: ConversationStore) -> None:
    day = "slots:{+15005550006}:2026-03-03"
    assert await store.interval_claim(day, "a1", 900.0, 960.0)
    assert await store.interval_claim(day, "b2", 1000.0, 1060.0)
    assert await store.interval_claim(day, "a1", 930.0, 990.0)  # overlaps only its old self
    assert not await store.interval_claim(day, "a1", 990.0, 1010.0)  # would overlap b2: a1 stays
    assert await store.interval_claim(day, "b2", 500.0, 560.0)  # moved earlier than its old start
    ranged = await store.interval_range(day, float("-inf"), float("inf"))
    assert [(i.ident, i.start) for i in ranged] == [("b2", 500.0), ("a1", 930.0)]
    await store.interval_remove(day, "a1")
    await store.interval_remove(day, "zz")
    assert [i.ident for i in await store.interval_range(day, float("-inf"), float("inf"))] == ["b2"]
    assert await store.interval_claim(day, "c3", 930.0, 990.0)


async def test_concurrent_claims_of_one_slot_let_exactly_one_win(store: ConversationStore) -> None:
    day = "slots:{+15005550006}:2026-03-04"
    won = await asyncio.gather(*(store.interval_claim(day, f"p{n}", 900.0, 960.0) for n in range(20)))
    assert sum(won) == 1


def test_a_state_stored_with_its_addresses_still_reads() -> None:
    # The form written before states left the key's fields out.
    old = '{"channel":"sms","bot":"+15005550006","user":"+14155550123","flow":"book","history":[[1.0,"user","hi"]]}'
    state = ConversationState.decode(old, KEY)
    assert state.key == KEY and state.flow == "book" and state.history[0].text == "hi"

"""One contract for every ConversationStore: memory and Redis behave the same."""

from __future__ import annotations

import asyncio
import base64
import zlib

from bot.messages import Channel
from bot.storage import ConversationKey, ConversationState, ConversationStore, HistoryEntry, MemoryStore, TurnStatus

KEY = ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550123")
OTHER = ConversationKey(Channel.WHATSAPP, bot="+15005550006", user="+14155550123")


async def raw(store: ConversationStore, key: str) -> str | None:
    """What the store holds under ``key`` (the stored form is part of the contract)."""
    if isinstance(store, MemoryStore):
        return store.values.get(key)
    value: str | None = await store.client.get(key)  # type: ignore[attr-defined]
    return value


async def raw_ttl(store: ConversationStore, key: str) -> float | None:
    if isinstance(store, MemoryStore):
        return store.values.ttl(key)
    ms: int = await store.client.pttl(key)  # type: ignore[attr-defined]
    return None if ms < 0 else ms / 1000


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
    seen = await raw(store, KEY.part("seen"))
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
    stored = await raw(store, KEY.part("state"))
    assert stored is not None and stored.startswith("z:")
    plain = zlib.decompress(base64.b64decode(stored[2:]))
    assert len(stored) < len(plain) / 3
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
    assert await raw(store, KEY.opt_out_key) is not None
    assert await raw_ttl(store, KEY.opt_out_key) is None  # never expires
    await asyncio.sleep(1.1)
    assert await store.load(KEY) is None  # the conversation expired
    assert await store.is_opted_out(KEY)  # the opt-out did not
    start = await store.begin_turn(KEY, "SM2", "t2", lease_seconds=5)
    assert start.opted_out is True
    await store.set_opted_out(KEY, False)
    assert not await store.is_opted_out(KEY)
    assert await raw(store, KEY.opt_out_key) is None
    await store.set_opted_out(KEY, True)
    assert await store.is_opted_out(KEY)


async def test_state_ttl_is_respected(store: ConversationStore) -> None:
    await store.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    assert await _commit(store, KEY, "SM1", "t1", ConversationState.new(KEY), state_ttl=600)
    ttl = await raw_ttl(store, KEY.part("state"))
    assert ttl is not None and 590 < ttl <= 600


def test_keys_share_one_cluster_hash_tag() -> None:
    parts = [KEY.part("state"), KEY.part("queue"), KEY.part("msg:SM1"), KEY.opt_out_key]
    tags = {p[p.index("{") : p.index("}") + 1] for p in parts}
    assert tags == {"{sms:+15005550006:+14155550123}"}


def test_a_state_stored_with_its_addresses_still_reads() -> None:
    # The form written before states left the key's fields out.
    old = '{"channel":"sms","bot":"+15005550006","user":"+14155550123","flow":"book","history":[[1.0,"user","hi"]]}'
    state = ConversationState.decode(old, KEY)
    assert state.key == KEY and state.flow == "book" and state.history[0].text == "hi"

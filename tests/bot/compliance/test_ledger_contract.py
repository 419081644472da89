"""One contract for every ConsentLedger: memory, one Redis and a Redis Cluster behave the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.compliance.ledger import (
    AddressHasher,
    ConsentEvent,
    ConsentLedger,
    MemoryConsentLedger,
    RedisConsentLedger,
    latest,
)
from bot.messages import Channel
from bot.storage.connect import client_for
from tests.support.slots import SlotCheck

BOT = "+15005550006"
ANA = "+14155550123"
BEN = "+14155550999"
T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HASHER = AddressHasher()


@pytest.fixture(params=["memory", "redis", "cluster"])
async def ledger(request: pytest.FixtureRequest, redis_url: str,
                 monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ConsentLedger]:
    if request.param == "memory":
        yield MemoryConsentLedger()
        return
    SlotCheck.install(monkeypatch)  # its script's keys on one slot, on the cluster for real
    url = redis_url if request.param == "redis" else request.getfixturevalue("cluster_url")
    client = client_for(url)
    await client.flushdb()
    yield RedisConsentLedger.on(client)
    await client.aclose()


def event(
    user: str = ANA,
    *,
    action: str = "opt_out",
    minutes: int = 0,
    sid: str = "SM1",
    channel: Channel = Channel.SMS,
    source: str = "natural_language",
    words: str = "stop texting me",
) -> ConsentEvent:
    return ConsentEvent.create(
        action=action, channel=channel, bot=BOT, user=user, source=source,  # type: ignore[arg-type]
        at=T0 + timedelta(minutes=minutes), hasher=HASHER, message_sid=sid, words=words,
    )


async def test_an_event_is_kept_with_every_field(ledger: ConsentLedger) -> None:
    first = event()
    assert await ledger.append(first)
    [kept] = await ledger.history(HASHER.hash(ANA))
    assert kept == first
    assert kept.address == "+141******23" and ANA not in kept.to_json()
    assert (kept.source, kept.message_sid, kept.words, kept.channel) == ("natural_language", "SM1", "stop texting me",
                                                                        Channel.SMS)


async def test_the_same_event_twice_is_recorded_once(ledger: ConsentLedger) -> None:
    assert await ledger.append(event(minutes=0))
    # A retried webhook: same MessageSid, a later clock.
    assert not await ledger.append(event(minutes=1))
    history = await ledger.history(HASHER.hash(ANA))
    assert [e.at for e in history] == [T0.timestamp()]


async def test_history_is_per_number_across_channels_oldest_first(ledger: ConsentLedger) -> None:
    await ledger.append(event(action="opt_in", minutes=10, sid="SM3", source="twilio_keyword", words="START"))
    await ledger.append(event(minutes=0, sid="SM1"))
    await ledger.append(event(BEN, minutes=5, sid="SM2"))
    await ledger.append(event(minutes=20, sid="SM4", channel=Channel.WHATSAPP, source="bot_keyword", words="STOP"))
    history = await ledger.history(HASHER.hash(ANA))
    assert [(e.action, e.message_sid) for e in history] == [("opt_out", "SM1"), ("opt_in", "SM3"), ("opt_out", "SM4")]
    last_sms = latest(history, Channel.SMS, BOT)
    assert last_sms is not None and last_sms.action == "opt_in"
    assert await ledger.history(HASHER.hash("+14155550000")) == []


async def test_since_pages_through_the_log_in_time_order(ledger: ConsentLedger) -> None:
    for i in range(5):
        await ledger.append(event(f"+1415555010{i}", minutes=i, sid=f"SM{i}"))
    later = await ledger.since((T0 + timedelta(minutes=2)).timestamp())
    assert [e.message_sid for e in later] == ["SM2", "SM3", "SM4"]
    page = await ledger.since(T0.timestamp(), limit=2, offset=2)
    assert [e.message_sid for e in page] == ["SM2", "SM3"]


async def test_events_from_the_same_moment_without_a_sid_do_not_collide(ledger: ConsentLedger) -> None:
    assert await ledger.append(event(ANA, sid="", source="staff"))
    assert await ledger.append(event(BEN, sid="", source="staff"))
    assert len(await ledger.since(0)) == 2


def test_a_keyed_hash_differs_and_is_the_same_for_every_channel() -> None:
    keyed = AddressHasher("s3cret")
    assert keyed.hash(ANA) != HASHER.hash(ANA)
    assert keyed.hash(f"whatsapp:{ANA}") == keyed.hash(ANA)


def test_an_unknown_source_is_refused() -> None:
    with pytest.raises(ValueError, match="source"):
        event(source="model")

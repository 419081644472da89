"""On a real 3-master Redis Cluster: every script on one slot, and the spine transcripts pass.

The contract suites run on the cluster too (the ``stores`` fixture's
``cluster`` backend); this module adds what they cannot show alone.
"""

from __future__ import annotations

from pathlib import Path

from bot.messages import Channel
from bot.storage import ConversationKey, ConversationState, Stores, connect
from bot.storage.appointments import _CLAIM, _RELEASE
from bot.storage.jobs import _NEXT_SLOT
from bot.storage.ledger import _ADVANCE, _TALLY
from bot.storage.redis import _ABORT, _BEGIN, _COMMIT
from devtools.replay.config import replay_settings
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import load_transcripts
from tests.bot.storage.conftest import slots_of

SCRIPTS = {_BEGIN, _COMMIT, _ABORT, _ADVANCE, _TALLY, _NEXT_SLOT, _CLAIM, _RELEASE}
KEY = ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550123")


async def test_every_script_runs_with_its_keys_on_one_slot(
    cluster_url: str, one_slot_per_script: list[tuple[str, tuple[str, ...]]]
) -> None:
    stores = Stores.redis(connect(cluster_url))
    await stores.conversations.client.flushdb()  # type: ignore[attr-defined]
    conversations, appts, ledger, jobs = stores.conversations, stores.appointments, stores.ledger, stores.jobs
    await conversations.begin_turn(KEY, "SM1", "t1", lease_seconds=5)
    await conversations.commit_turn(KEY, "SM1", "t1", state=ConversationState.new(KEY), answer="<Response/>",
                                    state_ttl=60, answer_ttl=60, opted_out=True)
    await conversations.begin_turn(KEY, "SM2", "t2", lease_seconds=5)
    await conversations.abort_turn(KEY, "SM2", "t2")
    await ledger.advance("status:{SM1}", "sent", 3, ttl=60)
    await ledger.tally("campaign:{spring}", "+14155550001", "sent", ttl=60)
    await jobs.next_slot("pace:{+15005550006}", 1.0)
    day = "+15005550006:2026-03-03"
    assert await appts.claim(day, "a1", 900.0, 960.0, ["chair-1", "chair-2"]) == "chair-1"
    await appts.release(day, "a1")
    # The pipelines of single-key reads span slots; the cluster client routes each read.
    await appts.index("sms:+15005550006:+14155550123", "a1", 1_772_000_000.0)
    assert await appts.due(1_771_990_000.0, 1_772_090_000.0) == ["a1"]
    assert await appts.get_many(["a1", "b2", "c3"]) == [None, None, None]
    await stores.close()

    called = {source for source, _ in one_slot_per_script}
    firsts = {source.strip().splitlines()[0] for source in SCRIPTS}
    assert called <= firsts and len(one_slot_per_script) >= len(SCRIPTS)
    for _, keys in one_slot_per_script:
        assert len(slots_of(keys)) == 1
    # Each script's keys share the hash tag that names them (one slot, by design).
    assert len(slots_of((KEY.part("state"), KEY.part("queue"), KEY.opt_out_key, KEY.part("seen")))) == 1


async def test_the_spine_transcripts_pass_on_the_cluster(cluster_url: str, redis_url: str) -> None:
    # The conversation store on the cluster; the job queue (unused in replay) on a plain Redis.
    settings = replay_settings(redis_url=cluster_url, queue_redis_url=redis_url)
    transcripts = load_transcripts([Path("tests/transcripts/spine")])
    assert transcripts
    report = await ReplayRunner(settings, concurrency=2).run(transcripts)
    failed = [r.failure or r.reason for r in report.results if r.status != "passed"]
    assert not failed, "\n\n".join(str(f) for f in failed)
    assert len(report.results) == len(transcripts)

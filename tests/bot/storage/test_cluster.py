"""On a real 3-master Redis Cluster: every script and pipeline on one slot, and the spine transcripts pass.

The contract suites run on the cluster too (the ``stores`` fixture's
``cluster`` backend); this module adds what they cannot show alone: every
script and every pipeline of ``bot/``, found in its source, ran here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.compliance.ledger import AddressHasher, ConsentEvent, RedisConsentLedger
from bot.messages import Channel
from bot.storage import ConversationKey, ConversationState, Stores, connect
from bot.storage.appointments import DUE_BUCKET_SECONDS, due_key, record_key
from devtools.replay.config import replay_settings
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import load_transcripts
from tests.support.slots import SlotCheck, bot_multi_key_commands, bot_pipelines, bot_scripts, slots_of

KEY = ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550123")
T0 = 1_772_000_000.0


async def test_every_script_and_pipeline_of_the_bot_runs_on_one_slot(cluster_url: str, slot_check: SlotCheck) -> None:
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
    consent = RedisConsentLedger(stores.conversations.backend)  # type: ignore[attr-defined]
    event = ConsentEvent.create(action="opt_out", channel=Channel.SMS, bot=KEY.bot, user=KEY.user,
                                source="twilio_keyword", at=datetime(2026, 3, 2, tzinfo=UTC), hasher=AddressHasher(),
                                message_sid="SM1", words="STOP")
    assert await consent.append(event) and not await consent.append(event)

    # The bulk reads: one pipeline over records and reminder buckets that sit on
    # every node; the cluster client sends each node its part, each command one slot.
    idents = [f"a{n}" for n in range(12)]
    for n, ident in enumerate(idents):
        await appts.put(ident, f'{{"n": {n}}}', ttl=60)
        await appts.index("sms:+15005550006:+14155550123", ident, T0 + (11 - n) * DUE_BUCKET_SECONDS)
    nodes = {stores.conversations.client.get_node_from_key(k).name  # type: ignore[attr-defined]
             for k in [*map(record_key, idents), *(due_key(int(T0 // DUE_BUCKET_SECONDS) + n) for n in range(12))]}
    assert len(nodes) == 3
    assert await appts.get_many([*idents, "missing"]) == [*(f'{{"n": {n}}}' for n in range(12)), None]
    assert await appts.due(T0, T0 + 11 * DUE_BUCKET_SECONDS) == idents[::-1]
    await appts.log_day("2026-03-03", "a1", T0)
    assert await appts.day_log("2026-03-03") == ["a1"]
    await stores.close()

    scripts = bot_scripts()
    assert slot_check.scripts_called() == set(scripts), "scripts never run on the cluster: " + ", ".join(
        name for source, name in scripts.items() if source not in slot_check.scripts_called())
    assert all(len(slots_of(keys)) == 1 for _, keys in slot_check.scripts)
    assert slot_check.pipeline_sites() == bot_pipelines()
    assert slot_check.commands and all(len(slots_of(keys)) == 1 for _, keys in slot_check.commands)
    # Each script's keys share the hash tag that names them (one slot, by design).
    assert len(slots_of((KEY.part("state"), KEY.part("queue"), KEY.opt_out_key, KEY.part("seen")))) == 1


def test_the_bot_sends_no_multi_key_command_outside_a_script() -> None:
    # Several keys in one command meet on one slot only by design: in a script
    # (checked above), never as a loose MGET/DEL a, b/RENAME that works on one
    # Redis and fails on a cluster.
    assert bot_multi_key_commands() == set()


async def test_the_spine_transcripts_pass_on_the_cluster(cluster_url: str, redis_url: str) -> None:
    # The conversation store on the cluster; the job queue (unused in replay) on a plain Redis.
    settings = replay_settings(redis_url=cluster_url, queue_redis_url=redis_url)
    transcripts = load_transcripts([Path("tests/transcripts/spine")])
    assert transcripts
    report = await ReplayRunner(settings, concurrency=2).run(transcripts)
    failed = [r.failure or r.reason for r in report.results if r.status != "passed"]
    assert not failed, "\n\n".join(str(f) for f in failed)
    assert len(report.results) == len(transcripts)

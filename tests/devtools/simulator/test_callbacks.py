"""Status callbacks: Twilio's order, fields and signature; failure injection; events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bot.messages import Channel
from devtools.simulator import (
    CreateMessageRequest,
    EventKind,
    FailureRule,
    Simulator,
    SimulatorConfig,
)
from tests.devtools.simulator.conftest import BOT, SERVICE, STATUS, USER, FakeBot, messages_path

EXAMPLES = json.loads((Path(__file__).resolve().parents[2] / "data" / "twilio" / "example-payloads.json").read_text())
WA_USER, WA_BOT = Channel.WHATSAPP.address(USER), Channel.WHATSAPP.address(BOT)


async def send(sim: Simulator, to: str = USER, from_: str = BOT, body: str = "hi") -> str:
    message = await sim.create_message(CreateMessageRequest(to=to, from_=from_, body=body, status_callback=STATUS))
    return message.sid


async def test_sms_lifecycle_in_order_and_signed(sim: Simulator, fake_bot: FakeBot) -> None:
    sid = await send(sim)
    await sim.drain()
    assert fake_bot.statuses(sid) == ["queued", "sent", "delivered"]
    received = [r for r in fake_bot.received if r.path == "/twilio/status"]
    assert all(r.valid for r in received), "every callback must pass RequestValidator.validate"
    assert {r.headers["user-agent"] for r in received} == {"TwilioProxy/1.1"}
    delivered = fake_bot.callbacks(sid)[-1]
    example = EXAMPLES["status_sms_delivered"]["form"]
    assert set(delivered) == set(example) - {"MessagingServiceSid"}
    assert (delivered["To"], delivered["From"], delivered["SmsSid"]) == (USER, BOT, sid)
    assert delivered["RawDlrDoneDate"] == "2603020900"  # the frozen clock, YYMMDDhhmm
    assert sim.get_message(sid).status == "delivered"  # type: ignore[union-attr]


async def test_whatsapp_lifecycle_ends_read(sim: Simulator, fake_bot: FakeBot) -> None:
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)  # in session
    sid = await send(sim, WA_USER, WA_BOT)
    await sim.drain()
    assert fake_bot.statuses(sid) == ["queued", "sent", "delivered", "read"]
    read = fake_bot.callbacks(sid)[-1]
    assert set(read) == set(EXAMPLES["status_whatsapp_read"]["form"])
    assert (read["EventType"], read["ChannelPrefix"], read["ChannelToAddress"]) == ("READ", "whatsapp", USER)


async def test_whatsapp_63016_callback_matches_capture(sim: Simulator, fake_bot: FakeBot) -> None:
    sid = await send(sim, WA_USER, WA_BOT)  # nobody wrote first: outside the window
    await sim.drain()
    failed = fake_bot.callbacks(sid)[-1]
    assert set(failed) == set(EXAMPLES["status_whatsapp_failed_63016"]["form"])
    assert (failed["MessageStatus"], failed["ErrorCode"]) == ("failed", "63016")


async def test_messaging_service_in_callbacks(sim: Simulator, fake_bot: FakeBot) -> None:
    message = await sim.create_message(
        CreateMessageRequest(to=USER, messaging_service_sid=SERVICE, body="hi", status_callback=STATUS)
    )
    assert message.resource()["from"] is None
    await sim.drain()
    delivered = fake_bot.callbacks(message.sid)[-1]
    assert set(delivered) == set(EXAMPLES["status_sms_delivered"]["form"])
    assert (delivered["MessagingServiceSid"], delivered["From"]) == (SERVICE, BOT)
    assert sim.get_message(message.sid).resource()["from"] == BOT  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("rule", "statuses"),
    [
        (FailureRule(to=USER, error_code=30003), ["queued", "sent", "undelivered"]),
        (FailureRule(to=USER, error_code=30003, status="failed"), ["queued", "failed"]),
        (FailureRule(error_code=30007), ["queued", "sent", "undelivered"]),
    ],
    ids=["undelivered", "failed", "everyone"],
)
async def test_failure_injection(sim: Simulator, fake_bot: FakeBot, rule: FailureRule, statuses: list[str]) -> None:
    sim.inject_failure(rule)
    sid = await send(sim)
    await sim.drain()
    assert fake_bot.statuses(sid) == statuses
    last = fake_bot.callbacks(sid)[-1]
    assert last["ErrorCode"] == str(rule.error_code)
    message = sim.get_message(sid)
    assert message is not None
    assert (message.status, message.error_code) == (statuses[-1], rule.error_code)
    assert message.error_message


async def test_failure_rule_matches_only_its_recipient_and_channel(sim: Simulator, fake_bot: FakeBot) -> None:
    sim.inject_failure(FailureRule(to="+14155550100", error_code=30003))
    sim.inject_failure(FailureRule(channel=Channel.WHATSAPP, error_code=30008))
    ok = await send(sim)
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    wa = await send(sim, WA_USER, WA_BOT)
    await sim.drain()
    assert fake_bot.statuses(ok)[-1] == "delivered"
    assert fake_bot.callbacks(wa)[-1]["ErrorCode"] == "30008"
    sim.clear_failures()
    cleared = await send(sim, "+14155550100")
    await sim.drain()
    assert fake_bot.statuses(cleared)[-1] == "delivered"


async def test_failure_rate_is_seeded(make_sim: Callable[..., Simulator]) -> None:
    async def failures(seed: int) -> list[bool]:
        sim = make_sim(seed=seed)
        sim.inject_failure(FailureRule(error_code=30003, rate=0.5))
        sids = [await send(sim, body=f"n{i}") for i in range(40)]
        await sim.drain()
        outcome = [sim.get_message(s).status == "undelivered" for s in sids]  # type: ignore[union-attr]
        await sim.http.aclose()
        return outcome

    first, again = await failures(3), await failures(3)
    assert first == again
    assert 5 < sum(first) < 35


def test_rate_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="rate"):
        FailureRule(rate=1.5)


async def test_no_callback_url_still_moves_status(sim: Simulator, fake_bot: FakeBot) -> None:
    message = await sim.create_message(CreateMessageRequest(to=USER, from_=BOT, body="quiet"))
    await sim.drain()
    assert fake_bot.callbacks() == []
    assert sim.get_message(message.sid).status == "delivered"  # type: ignore[union-attr]


async def test_default_status_callback(make_sim: Callable[..., Simulator], fake_bot: FakeBot) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, default_status_callback=STATUS))
    message = await sim.create_message(CreateMessageRequest(to=USER, from_=BOT, body="hi"))
    await sim.drain()
    assert fake_bot.statuses(message.sid) == ["queued", "sent", "delivered"]
    await sim.http.aclose()


async def test_unreachable_callback_is_reported_and_lifecycle_goes_on(make_sim: Callable[..., Simulator]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sim = make_sim(http_client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)))
    with sim.subscribe() as events:
        sid = await send(sim)
        await sim.drain()
        seen = events.pending()
    errors = [e for e in seen if e.kind is EventKind.CALLBACK_SENT]
    assert len(errors) == 3 and all("connection refused" in e.data["error"] for e in errors)
    assert sim.get_message(sid).status == "delivered"  # type: ignore[union-attr]
    await sim.http.aclose()


async def test_step_delay_spaces_the_callbacks(make_sim: Callable[..., Simulator], fake_bot: FakeBot) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0.05))
    started = time.perf_counter()
    sid = await send(sim)
    assert sim.get_message(sid).status == "queued"  # type: ignore[union-attr]
    await sim.drain()
    assert time.perf_counter() - started >= 0.15
    assert fake_bot.statuses(sid) == ["queued", "sent", "delivered"]
    await sim.http.aclose()


async def test_deleted_message_stops_its_lifecycle(api: httpx.AsyncClient, sim: Simulator, fake_bot: FakeBot) -> None:
    created = (await api.post(messages_path(), data={"To": USER, "From": BOT, "Body": "x"})).json()
    assert (await api.delete(created["uri"])).status_code == 204
    await sim.drain()
    assert sim.get_message(created["sid"]) is None
    assert (await api.get(created["uri"])).status_code == 404


# -- events ----------------------------------------------------------------------


async def test_events_follow_the_lifecycle(sim: Simulator) -> None:
    with sim.subscribe() as events:
        sid = await send(sim)
        await sim.drain()
        seen = events.pending()
    assert seen[0].kind is EventKind.MESSAGE_CREATED and seen[0].message.sid == sid  # type: ignore[union-attr]
    statuses = [e.message.status for e in seen if e.kind is EventKind.STATUS_CHANGED]  # type: ignore[union-attr]
    assert statuses == ["sent", "delivered"]
    callbacks = [e.data["status"] for e in seen if e.kind is EventKind.CALLBACK_SENT]
    assert callbacks == ["queued", "sent", "delivered"]
    frame = seen[0].to_dict()
    json.dumps(frame)  # ready for SSE / WebSocket
    assert frame["message"]["segments"] == {"encoding": "GSM-7", "segments": 1, "units": 2, "characters": 2}


async def test_subscription_iterates_until_closed(sim: Simulator) -> None:
    events = sim.subscribe()
    sim.opt_out(Channel.SMS, user=USER, bot=BOT)

    async def collect() -> list[EventKind]:
        return [event.kind async for event in events]

    task = asyncio.create_task(collect())
    await asyncio.sleep(0)
    events.close()
    assert await task == [EventKind.OPT_OUT_CHANGED]
    with pytest.raises(EOFError):
        await events.get()


async def test_slow_subscriber_drops_oldest(make_sim: Callable[..., Simulator]) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, subscriber_queue_size=2))
    with sim.subscribe() as events:
        for user in ("+14155550101", "+14155550102", "+14155550103"):
            sim.opt_out(Channel.SMS, user=user, bot=BOT)
        assert events.dropped == 1
        assert (await events.get()).data["user"] == "+14155550102"
    await sim.aclose()
    await sim.http.aclose()


async def test_aclose_closes_subscriptions(make_sim: Callable[..., Simulator]) -> None:
    sim = make_sim()
    events = sim.subscribe()
    await sim.aclose()
    assert events.closed
    await sim.http.aclose()

"""The official twilio SDK works against the simulator, changing only the base URL.

Sync client: the simulator runs under uvicorn in a thread
(``tests.support.servers.run_app``). Async client (``AsyncTwilioHttpClient``):
uvicorn runs in the test's own loop, so the test can also text the bot
(``send_inbound``) and move the frozen clock.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import timedelta

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from bot.clock import FrozenClock
from bot.messages import Channel
from devtools.simulator import FailureRule, Simulator, SimulatorConfig, create_simulator_app, send_inbound
from tests.devtools.simulator.conftest import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    BOT,
    REMINDER,
    SERVICE,
    STATUS,
    USER,
    FakeBot,
    serve_in_loop,
)
from tests.support.servers import run_app

# twilio 9.13's async client uses aiohttp's deprecated BasicAuth / ``auth=``;
# the warnings are attributed to twilio, so the project-wide aiohttp filter
# misses them. Not ours to fix.
ASYNC_SDK_WARNING = r"ignore:(BasicAuth|The 'auth' parameter) is deprecated:DeprecationWarning"


@contextmanager
def sync_client(sim: Simulator) -> Iterator[Client]:
    with run_app(create_simulator_app(sim)) as base_url:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = base_url
        yield client


@asynccontextmanager
async def async_client(sim: Simulator) -> AsyncIterator[Client]:
    async with serve_in_loop(create_simulator_app(sim, close_on_shutdown=False)) as base_url:
        http = AsyncTwilioHttpClient()
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        client.api.base_url = base_url
        try:
            yield client
        finally:
            await http.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


# -- sync client ----------------------------------------------------------------


def test_sync_create_fetch_list(make_sim: Callable[..., Simulator], fake_bot: FakeBot) -> None:
    sim = make_sim()
    with sync_client(sim) as client:
        sent = client.messages.create(to=USER, from_=BOT, body="Hello from the SDK", status_callback=STATUS)
        assert sent.sid.startswith("SM") and sent.status == "queued"
        assert sent.num_segments == "1" and sent.direction == "outbound-api"
        assert sent.date_created is not None  # parsed from RFC 2822 by the SDK

        wait_for(lambda: fake_bot.statuses(sent.sid)[-1:] == ["delivered"])
        fetched = client.messages(sent.sid).fetch()
        assert fetched.status == "delivered" and fetched.body == "Hello from the SDK"

        for i in range(4):
            client.messages.create(to="+14155550100", from_=BOT, body=f"bulk {i}")
        # page_size forces the SDK to follow next_page_uri across pages.
        listed = client.messages.list(to="+14155550100", page_size=2)
        assert [m.body for m in listed] == ["bulk 3", "bulk 2", "bulk 1", "bulk 0"]
        assert len(client.messages.list(limit=3)) == 3


def test_sync_media_and_messaging_service(make_sim: Callable[..., Simulator]) -> None:
    with sync_client(make_sim()) as client:
        mms = client.messages.create(
            to=USER, from_=BOT, media_url=["https://example.com/a.jpg", "https://example.com/b.png"]
        )
        assert mms.sid.startswith("MM") and mms.num_media == "2"
        via_service = client.messages.create(to=USER, messaging_service_sid=SERVICE, body="hi")
        # Twilio has not picked a sender yet when it answers.
        assert via_service.from_ is None and via_service.messaging_service_sid == SERVICE


@pytest.mark.parametrize(
    ("to", "from_", "code"),
    [
        (USER, "+15005550001", 21212),
        (USER, "+15005550007", 21606),
        (USER, "+15005550008", 21611),
        ("+15005550001", BOT, 21211),
        ("+15005550002", BOT, 21612),
        ("+15005550003", BOT, 21408),
        ("+15005550004", BOT, 21610),
        ("+15005550009", BOT, 21614),
        ("+1415", BOT, 21211),
        ("0044 20 7946 0958", BOT, 21211),
    ],
)
def test_sync_magic_numbers(make_sim: Callable[..., Simulator], to: str, from_: str, code: int) -> None:
    with sync_client(make_sim()) as client, pytest.raises(TwilioRestException) as info:
        client.messages.create(to=to, from_=from_, body="test")
    assert info.value.code == code
    assert info.value.status == 400


def test_sync_errors(make_sim: Callable[..., Simulator]) -> None:
    with sync_client(make_sim()) as client:
        with pytest.raises(TwilioRestException) as info:
            client.messages.create(to=USER, from_=BOT, body="x" * 1601)
        assert info.value.code == 21617
        with pytest.raises(TwilioRestException) as info:
            client.messages("SM" + "0" * 32).fetch()
        assert (info.value.status, info.value.code) == (404, 20404)
        intruder = Client(ACCOUNT_SID, "wrong-token")
        intruder.api.base_url = client.api.base_url
        with pytest.raises(TwilioRestException) as info:
            intruder.messages("SM" + "0" * 32).fetch()
        assert (info.value.status, info.value.code) == (401, 20003)


def test_sync_failure_injection(make_sim: Callable[..., Simulator], fake_bot: FakeBot) -> None:
    sim = make_sim()
    sim.inject_failure(FailureRule(to="+14155550100", error_code=30003))
    with sync_client(sim) as client:
        sent = client.messages.create(to="+14155550100", from_=BOT, body="hi", status_callback=STATUS)
        wait_for(lambda: "undelivered" in fake_bot.statuses(sent.sid))
        assert fake_bot.callbacks(sent.sid)[-1]["ErrorCode"] == "30003"
        fetched = client.messages(sent.sid).fetch()
        assert (fetched.status, fetched.error_code) == ("undelivered", 30003)


# -- async client ---------------------------------------------------------------


@pytest.mark.filterwarnings(ASYNC_SDK_WARNING)
async def test_async_create_fetch(sim: Simulator, fake_bot: FakeBot) -> None:
    async with async_client(sim) as client:
        sent = await client.messages.create_async(to=USER, from_=BOT, body="async hi", status_callback=STATUS)
        assert sent.status == "queued"
        await sim.drain()
        assert fake_bot.statuses(sent.sid) == ["queued", "sent", "delivered"]
        fetched = await client.messages(sent.sid).fetch_async()
        assert fetched.status == "delivered"
        listed = await client.messages.list_async(to=USER)
        assert [m.sid for m in listed] == [sent.sid]


@pytest.mark.filterwarnings(ASYNC_SDK_WARNING)
async def test_async_opt_out_after_stop(sim: Simulator) -> None:
    async with async_client(sim) as client:
        await client.messages.create_async(to=USER, from_=BOT, body="before STOP")
        await send_inbound(sim, user=USER, bot=BOT, body="stop")
        with pytest.raises(TwilioRestException) as info:
            await client.messages.create_async(to=USER, from_=BOT, body="after STOP")
        assert info.value.code == 21610
        # Opted out of one number of a service: the whole service is blocked.
        with pytest.raises(TwilioRestException) as info:
            await client.messages.create_async(to=USER, messaging_service_sid=SERVICE, body="via service")
        assert info.value.code == 21610
        await send_inbound(sim, user=USER, bot=BOT, body="START")
        again = await client.messages.create_async(to=USER, from_=BOT, body="welcome back")
        assert again.status == "queued"
        await sim.drain()


@pytest.mark.filterwarnings(ASYNC_SDK_WARNING)
async def test_async_whatsapp_window_rejected(
    make_sim: Callable[..., Simulator], clock: FrozenClock, fake_bot: FakeBot
) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, window_errors="reject"))
    wa_user, wa_bot = Channel.WHATSAPP.address(USER), Channel.WHATSAPP.address(BOT)
    try:
        async with async_client(sim) as client:
            await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, body="hi")
            inside = await client.messages.create_async(to=wa_user, from_=wa_bot, body="free-form, in session")
            assert inside.status == "queued"

            clock.advance(timedelta(hours=25))
            with pytest.raises(TwilioRestException) as info:
                await client.messages.create_async(to=wa_user, from_=wa_bot, body="free-form, too late")
            assert info.value.code == 63016

            template = await client.messages.create_async(
                to=wa_user,
                from_=wa_bot,
                content_sid=REMINDER.sid,
                content_variables=json.dumps({"1": "Ana", "2": "Tue 3pm"}),
            )
            assert template.body == "Hi Ana, your cleaning is on Tue 3pm. Still good?"
            await sim.drain()
            assert (await client.messages(template.sid).fetch_async()).status == "read"
    finally:
        await sim.aclose()
        await sim.http.aclose()


@pytest.mark.filterwarnings(ASYNC_SDK_WARNING)
async def test_async_whatsapp_window_fails_in_callback_by_default(
    sim: Simulator, clock: FrozenClock, fake_bot: FakeBot
) -> None:
    wa_user, wa_bot = Channel.WHATSAPP.address(USER), Channel.WHATSAPP.address(BOT)
    async with async_client(sim) as client:
        # Like Twilio: accepted (201), then failed with 63016 in the callback.
        late = await client.messages.create_async(to=wa_user, from_=wa_bot, body="hello?", status_callback=STATUS)
        assert late.status == "queued"
        await sim.drain()
        assert fake_bot.statuses(late.sid) == ["queued", "failed"]
        assert fake_bot.callbacks(late.sid)[-1]["ErrorCode"] == "63016"
        fetched = await client.messages(late.sid).fetch_async()
        assert (fetched.status, fetched.error_code) == ("failed", 63016)

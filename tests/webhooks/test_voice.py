"""The voice webhooks: signed, voice TwiML, one engine turn per request, call status and metrics."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.business import load_business
from bot.engine import TurnContext
from bot.messages import Reply, TurnResult
from bot.settings import Settings
from bot.storage import MemoryStore
from bot.storage.stores import Stores
from bot.voice.calls import CallLog
from devtools.replay.transport import SimulatorHttpClient
from devtools.simulator import Simulator, create_simulator_app
from devtools.simulator.calls import CallBook, CallPlayer
from devtools.webhook_client import WebhookClient
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER, PUBLIC_URL, signed_client
from webhooks.app import create_app

USER = "+14155550123"
CALL = "CA" + "cd" * 16
BUSINESS = load_business(Path("intents/business.yaml"))


def call_form(**extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL, "AccountSid": ACCOUNT_SID, "From": USER, "To": BOT_NUMBER, "Caller": USER,
        "Called": BOT_NUMBER, "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra,
    }


def twiml(text: str) -> ET.Element:
    root = ET.fromstring(text)  # noqa: S314 -- our own answer
    assert root.tag == "Response"
    return root


def metric(app: FastAPI, name: str, **labels: str) -> float:
    value = app.state.services.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else float(value)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, store=MemoryStore())


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[WebhookClient]:
    async with app.router.lifespan_context(app):
        c = signed_client(app)
        yield c
        await c.http.aclose()


@pytest.fixture
def call(app: FastAPI, client: WebhookClient) -> Callable[..., CallPlayer]:
    sim = Simulator(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN, webhook_url="http://internal:8000/twilio/messages",
                    webhook_public_url=f"{PUBLIC_URL}/twilio/messages", http_client=client.http)

    def place(**kwargs: Any) -> CallPlayer:
        return CallPlayer(sim, user=USER, bot=BOT_NUMBER, **kwargs)

    return place


async def test_unsigned_or_forged_requests_are_refused(client: WebhookClient) -> None:
    for path in ("/twilio/voice", "/twilio/voice/turn?n=1", "/twilio/voice/status"):
        response = await client.http.post(path, data=call_form())
        assert response.status_code == 403, path
        body, headers = client.signed(path, call_form())
        response = await client.http.post(path, content=body.replace(b"ringing", b"complete"), headers=headers)
        assert response.status_code == 403, path


async def test_missing_call_fields_and_bad_turn_numbers_are_400(client: WebhookClient) -> None:
    form = call_form()
    del form["CallSid"]
    assert (await client.post("/twilio/voice", form)).status_code == 400
    assert (await client.post("/twilio/voice/turn?n=abc", call_form(SpeechResult="hi"))).status_code == 400
    assert (await client.post("/twilio/voice/turn", call_form(SpeechResult="hi"))).status_code == 400


async def test_greeting_gathers_speech_and_keys_then_reprompts_once_then_hangs_up(client: WebhookClient) -> None:
    response = await client.post("/twilio/voice", call_form())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/xml")
    verbs = list(twiml(response.text))
    assert [v.tag for v in verbs] == ["Gather", "Gather", "Say", "Hangup"]
    first, again = verbs[0], verbs[1]
    assert first.get("input") == "speech dtmf" and first.get("speechTimeout") == "auto"
    assert first.get("language") == "en-US" and first.get("method") == "POST"
    assert first.get("action") == "/twilio/voice/turn?n=1&menu=1" == again.get("action")
    assert {"Cleaning", "Checkup", "Whitening"} <= set((first.get("hints") or "").split(", "))
    says = first.findall("Say")
    assert says[0].text is not None and says[0].text.startswith("Hi! This is Bright Smile Dental.")
    assert all(s.get("voice") == "Polly.Joanna-Neural" and s.get("language") == "en-US" for s in says)
    assert "Are you still there?" in (again.findtext("Say") or "")
    assert "Goodbye" in (verbs[2].text or "")


async def test_voice_name_and_language_are_settings(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(voice_name="Google.en-US-Neural2-F", voice_language="es-US"), store=MemoryStore())
    client = signed_client(app)
    response = await client.post("/twilio/voice", call_form())
    say = twiml(response.text).find("Gather/Say")
    assert say is not None and say.get("voice") == "Google.en-US-Neural2-F" and say.get("language") == "es-US"
    await client.http.aclose()


async def test_each_turn_runs_once_and_a_retry_gets_the_same_bytes(app: FastAPI, client: WebhookClient) -> None:
    form = call_form(CallStatus="in-progress", SpeechResult="What are your hours?", Confidence="0.93")
    first = await client.post("/twilio/voice/turn?n=1", form)
    again = await client.post("/twilio/voice/turn?n=1", form)
    assert first.text == again.text and "Monday to Friday 8 AM to 5 PM" in first.text
    assert metric(app, "bot_turns_total", channel="voice", intent="hours") == 1
    assert metric(app, "bot_duplicate_deliveries_total") == 1
    # The next turn's URL carries the next counter.
    gather = twiml(first.text).find("Gather")
    assert gather is not None and gather.get("action") == "/twilio/voice/turn?n=2"
    # The same words at the next turn are a new turn.
    await client.post("/twilio/voice/turn?n=2", form)
    assert metric(app, "bot_turns_total", channel="voice", intent="hours") == 2


async def test_a_whole_call_through_the_simulator(app: FastAPI, call: Callable[..., CallPlayer]) -> None:
    player = call()
    heard = await player.start()
    assert heard.listening and heard.said[0].startswith("Hi! This is Bright Smile Dental.")
    heard = await player.press("4")  # the greeting's menu: our hours
    assert "Monday to Friday" in heard.said[0]
    heard = await player.silence()
    assert heard.said == ("Are you still there? How can I help?",) and heard.listening
    heard = await player.silence()
    assert heard.ended and "Goodbye" in heard.said[0]
    record = await CallLog(Stores.beside(app.state.services.store).ledger).get(player.call.sid)
    assert record is not None and record.status == "completed" and record.duration is not None
    assert metric(app, "bot_calls_total", status="completed") == 1
    assert metric(app, "bot_call_seconds_count") == 1
    resource = CallBook.of(player.sim).calls[player.call.sid].resource()
    assert resource["status"] == "completed" and resource["direction"] == "inbound"


async def test_hand_off_dials_staff_with_caller_id_timeout_and_action(client: WebhookClient) -> None:
    form = call_form(CallStatus="in-progress", Digits="0")
    verbs = list(twiml((await client.post("/twilio/voice/turn?n=1", form)).text))
    assert [v.tag for v in verbs] == ["Say", "Dial"]
    dial = verbs[1]
    assert dial.get("callerId") == BOT_NUMBER and dial.get("timeout") == "20"
    assert dial.get("action") == "/twilio/voice/dial?n=2"
    assert dial.findtext("Number") == BUSINESS.phone_e164


async def test_status_callbacks_are_recorded_and_counted_once(app: FastAPI, client: WebhookClient) -> None:
    done = call_form(CallStatus="completed", CallDuration="42")
    assert (await client.post("/twilio/voice/status", done)).status_code == 204
    assert (await client.post("/twilio/voice/status", done)).status_code == 204
    busy = dict(call_form(CallStatus="busy"), CallSid="CA" + "ef" * 16)
    assert (await client.post("/twilio/voice/status", busy)).status_code == 204
    assert metric(app, "bot_calls_total", status="completed") == 1
    assert metric(app, "bot_calls_total", status="busy") == 1
    assert metric(app, "bot_call_seconds_sum") == 42
    record = await CallLog(Stores.beside(app.state.services.store).ledger).get(CALL)
    assert record is not None and (record.status, record.duration, record.caller) == ("completed", 42, USER)
    bad = call_form(CallStatus="completed", CallDuration="forty")
    assert (await client.post("/twilio/voice/status", bad)).status_code == 400
    missing = call_form()
    del missing["CallStatus"]
    assert (await client.post("/twilio/voice/status", missing)).status_code == 400


class _SlowBrain:
    """Answers only when the test lets it: a model call that outlives the reply budget."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.runs = 0
        self.template_context = {"business": BUSINESS}

    async def handle(self, ctx: TurnContext) -> TurnResult:
        self.runs += 1
        self.started.set()
        await self.release.wait()
        return TurnResult(replies=(Reply(text="Here is the answer you waited for."),), intent="hours")


async def test_a_slow_turn_says_one_moment_and_redirects_to_its_result(
    make_settings: Callable[..., Settings],
) -> None:
    brain = _SlowBrain()
    app = create_app(make_settings(reply_budget_seconds=0.05), store=MemoryStore(), handler=brain)
    async with app.router.lifespan_context(app):
        client = signed_client(app)
        form = call_form(CallStatus="in-progress", SpeechResult="what are your hours", Confidence="0.9")
        held = twiml((await client.post("/twilio/voice/turn?n=1", form)).text)
        assert [v.tag for v in held] == ["Say", "Redirect"]
        assert held[0].text == "One moment." and held[1].text == "/twilio/voice/result?n=1&w=1"
        # Still not done: hold again, bounded by VOICE_MAX_REDIRECTS.
        again = twiml((await client.post("/twilio/voice/result?n=1&w=1", call_form(CallStatus="in-progress"))).text)
        assert [v.tag for v in again] == ["Say", "Redirect"] and again[1].text == "/twilio/voice/result?n=1&w=2"
        brain.release.set()
        await asyncio.wait(app.state.services.background, timeout=10)
        done = (await client.post("/twilio/voice/result?n=1&w=2", call_form(CallStatus="in-progress"))).text
        assert "Here is the answer you waited for." in done and brain.runs == 1
        gather = twiml(done).find("Gather")
        assert gather is not None and gather.get("action") == "/twilio/voice/turn?n=2"
        await client.http.aclose()


async def test_the_wait_for_a_slow_turn_is_bounded(make_settings: Callable[..., Settings]) -> None:
    brain = _SlowBrain()
    app = create_app(make_settings(reply_budget_seconds=0.05, voice_max_redirects=2), store=MemoryStore(),
                     handler=brain)
    async with app.router.lifespan_context(app):
        client = signed_client(app)
        form = call_form(CallStatus="in-progress", SpeechResult="what are your hours", Confidence="0.9")
        await client.post("/twilio/voice/turn?n=1", form)
        given_up = (await client.post("/twilio/voice/result?n=1&w=2", call_form(CallStatus="in-progress"))).text
        assert "taking longer than it should" in given_up
        gather = twiml(given_up).find("Gather")
        assert gather is not None and gather.get("action") == "/twilio/voice/turn?n=1"
        brain.release.set()
        await client.http.aclose()


async def test_calls_api_through_the_official_sdk(app: FastAPI, call: Callable[..., CallPlayer]) -> None:
    player = call()
    await player.start()
    await player.hang_up()
    sim = player.sim
    http = SimulatorHttpClient(factory=lambda: create_simulator_app(sim, close_on_shutdown=False))
    twilio = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    twilio.api.base_url = "http://twilio.sim"
    try:
        calls = await twilio.calls.list_async(status="completed")
        assert [c.sid for c in calls] == [player.call.sid]
        fetched = await twilio.calls(player.call.sid).fetch_async()
        assert (fetched._from, fetched.to, fetched.direction) == (USER, BOT_NUMBER, "inbound")
        assert fetched.duration is not None and int(fetched.duration) >= 1
        placed = await twilio.calls.create_async(to=USER, from_=BOT_NUMBER,
                                                 twiml="<Response><Say>Your appointment is tomorrow.</Say></Response>")
        assert placed.direction == "outbound-api" and placed.status == "completed"
        assert CallBook.of(sim).calls[placed.sid].said == ["Your appointment is tomorrow."]
        with pytest.raises(TwilioRestException) as missing:
            await twilio.calls.create_async(to=USER, from_=BOT_NUMBER)
        assert missing.value.code == 21205
        with pytest.raises(TwilioRestException) as unknown:
            await twilio.calls("CA" + "0" * 32).fetch_async()
        assert unknown.value.status == 404
    finally:
        await http.close()

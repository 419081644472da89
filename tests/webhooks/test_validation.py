"""Every inbound field checked by type: a clear 400, never a 500, never broken TwiML."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections.abc import Callable
from xml.etree import ElementTree

import pytest
from fastapi import FastAPI

from bot.messages import Channel
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from devtools.webhook_client import WebhookClient, inbound_form, new_sid, parse_twiml
from tests.conftest import BOT_NUMBER, signed_client
from tests.support.servers import run_app
from webhooks.app import create_app

USER = "+14155550123"


def sms(body: str = "hi", **fields: str) -> dict[str, str]:
    return {**inbound_form(Channel.SMS, USER, BOT_NUMBER, body), **fields}


def whatsapp(body: str = "hi", **fields: str) -> dict[str, str]:
    return {**inbound_form(Channel.WHATSAPP, USER, BOT_NUMBER, body), **fields}


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"NumSegments": "²"}, "NumSegments"),
        ({"NumSegments": "-1"}, "NumSegments"),
        ({"NumSegments": "1e3"}, "NumSegments"),
        ({"NumMedia": "١"}, "NumMedia"),  # Arabic-Indic one: isdigit() says yes, Twilio never sends it
        ({"From": "whatsapp:", "To": f"whatsapp:{BOT_NUMBER}"}, "From"),
        ({"From": "whatsapp:+"}, "From"),
        ({"From": "not a number"}, "From"),
        ({"From": "+1415555012345678"}, "From"),  # longer than E.164 allows
        ({"To": ""}, "To"),
        ({"MessageSid": "SM1"}, "MessageSid"),
        ({"MessageSid": "XX" + "a" * 32}, "MessageSid"),
        ({"MessageSid": "SM" + "g" * 32}, "MessageSid"),
        ({"AccountSid": "AC123"}, "AccountSid"),
        ({"MessagingServiceSid": "MGxyz"}, "MessagingServiceSid"),
        ({"OriginalRepliedMessageSid": "nope"}, "OriginalRepliedMessageSid"),
        ({"Latitude": "١٢", "Longitude": "1.5"}, "Latitude"),
        ({"Latitude": "nan", "Longitude": "1.5"}, "Latitude"),
        ({"Latitude": "12.5", "Longitude": "181"}, "Longitude"),
    ],
)
async def test_bad_fields_are_a_clear_400(
    client: WebhookClient, redis_store: RedisStore, fields: dict[str, str], named: str
) -> None:
    resp = await client.post("/twilio/messages", sms(**fields))
    assert resp.status_code == 400, resp.text
    assert named in resp.json()["detail"]
    assert await redis_store.load(ConversationKey(Channel.SMS, BOT_NUMBER, USER)) is None


async def test_whatsapp_without_a_number_never_shares_a_conversation(client: WebhookClient) -> None:
    for _ in range(2):
        resp = await client.post("/twilio/messages", whatsapp(From="whatsapp:"))
        assert resp.status_code == 400
        assert "no number" in resp.json()["detail"]


async def test_good_values_still_pass(client: WebhookClient) -> None:
    fields = {"NumSegments": "2", "NumMedia": "0", "AccountSid": "AC" + "ab" * 16,
              "MessagingServiceSid": "MG" + "0f" * 16}
    assert (await client.post("/twilio/messages", sms(**fields))).status_code == 200
    # A short code as the bot's number (To) is a real Twilio setup.
    form = inbound_form(Channel.SMS, USER, "12345", "hi")
    assert (await client.post("/twilio/messages", form)).status_code == 200


@pytest.mark.parametrize("code", ["²", "-5", "12a", "٣"])
async def test_status_error_code_must_be_ascii_digits(client: WebhookClient, code: str) -> None:
    form = {"MessageSid": new_sid(), "MessageStatus": "failed", "ErrorCode": code,
            "To": USER, "From": BOT_NUMBER}
    resp = await client.post("/twilio/status", form)
    assert resp.status_code == 400 and "ErrorCode" in resp.json()["detail"]


async def test_status_sid_must_be_twilio_shaped(client: WebhookClient) -> None:
    resp = await client.post("/twilio/status", {"MessageSid": "SM1", "MessageStatus": "sent"})
    assert resp.status_code == 400 and "MessageSid" in resp.json()["detail"]


async def test_unknown_status_and_error_code_become_other_in_metrics(app: FastAPI, client: WebhookClient) -> None:
    for status, code in (("x" * 30, "1"), ("brand_new_status", ""), ("failed", "99999"), ("failed", "30003")):
        form = {"MessageSid": new_sid(), "MessageStatus": status, "To": USER, "From": BOT_NUMBER}
        if code:
            form["ErrorCode"] = code
        assert (await client.post("/twilio/status", form)).status_code == 204
    metrics = (await client.http.get("/metrics")).text
    series = [line for line in metrics.splitlines() if line.startswith("bot_status_callbacks_total{")]
    assert sorted(series) == sorted([
        'bot_status_callbacks_total{error_code="",status="other"} 1.0',
        'bot_status_callbacks_total{error_code="other",status="other"} 1.0',
        'bot_status_callbacks_total{error_code="other",status="failed"} 1.0',
        'bot_status_callbacks_total{error_code="30003",status="failed"} 1.0',
    ])


# -- control characters never reach TwiML -------------------------------------------------------


@pytest.mark.parametrize("name", ["\x00", "\x0b", "\x1b", "Ana\x00\x0b\x1b[31m", "\x7f\u0085Bo\ufffe"])
async def test_control_characters_in_profile_name_keep_twiml_well_formed(
    client: WebhookClient, name: str
) -> None:
    resp = await client.post("/twilio/messages", whatsapp("hello", ProfileName=name))
    assert resp.status_code == 200
    root = ElementTree.fromstring(resp.text)  # noqa: S314 - our own answer; well-formed, or this raises
    [message] = root.findall("Message")
    text = message.text or ""
    assert not any(ord(c) < 32 and c not in "\t\n\r" for c in text)
    assert "Bright Smile Dental" in text
    if "Ana" in name:
        assert "Ana[31m" in text


async def test_control_characters_in_the_body_are_dropped(client: WebhookClient, redis_store: RedisStore) -> None:
    resp = await client.post("/twilio/messages", sms("what are your\x00 hours\x1b"))
    assert resp.status_code == 200
    ElementTree.fromstring(resp.text)  # noqa: S314 - our own answer
    state = await redis_store.load(ConversationKey(Channel.SMS, BOT_NUMBER, USER))
    assert state is not None and state.history[0].text == "what are your hours"


# -- production hides the API schema ------------------------------------------------------------


async def test_no_schema_or_api_explorer_in_production(
    make_settings: Callable[..., Settings], redis_url: str, redis_store: RedisStore
) -> None:
    production = create_app(make_settings(environment="production", redis_url=redis_url), store=redis_store)
    http = signed_client(production).http
    for path in ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect"):
        assert (await http.get(path)).status_code == 404, path
    development = signed_client(create_app(make_settings(environment="development"), store=redis_store)).http
    assert (await development.get("/openapi.json")).status_code == 200


# -- a body shorter than its Content-Length -----------------------------------------------------


def test_short_body_is_a_400_without_a_traceback(
    settings: Settings, redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    app = create_app(settings, store=redis_store)
    with run_app(app) as base:
        host, port = base.removeprefix("http://").split(":")

        async def send(path: str) -> bytes:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(
                f"POST {path} HTTP/1.1\r\nHost: bot\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: 500\r\n\r\nFrom=%2B14155550123&Body=hi".encode()
            )
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), timeout=15)
            writer.close()
            return answer

        async def both() -> list[bytes]:
            return [await send("/twilio/messages"), await send("/twilio/status")]

        for answer in asyncio.run(both()):
            assert answer.startswith(b"HTTP/1.1 400"), answer
            assert b"incomplete" in answer
    assert not [r for r in caplog.records if r.exc_info], "no traceback logged"


# -- every log line is JSON, tracebacks included -----------------------------------------------


def test_logs_and_uncaught_tracebacks_are_json_lines() -> None:
    script = (
        "import logging\n"
        "from bot.observability import configure_logging\n"
        "configure_logging('INFO', json_logs=True)\n"
        "logging.getLogger('bot.x').info('hello', extra={'fields': {'k': 1}})\n"
        "try:\n"
        "    1 / 0\n"
        "except ZeroDivisionError:\n"
        "    logging.getLogger('uvicorn.error').exception('Exception in ASGI application')\n"
        "logging.getLogger('arq.worker').warning('library warning')\n"
        "raise RuntimeError('boom')\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    lines = [json.loads(line) for line in run.stderr.splitlines()]  # every line is JSON
    assert [(line["logger"], line["msg"]) for line in lines] == [
        ("bot.x", "hello"),
        ("uvicorn.error", "Exception in ASGI application"),
        ("arq.worker", "library warning"),
        ("bot", "uncaught exception"),
    ]
    assert lines[0]["k"] == 1
    assert "ZeroDivisionError" in lines[1]["exc"] and "Traceback" in lines[1]["exc"]
    assert "RuntimeError: boom" in lines[3]["exc"]


# -- the retry cache and opt-outs ---------------------------------------------------------------


async def test_retry_after_stop_gets_no_cached_answer(client: WebhookClient) -> None:
    first = whatsapp("what are your hours")
    answered = await client.post("/twilio/messages", first)
    assert "hours" in parse_twiml(answered.text)[0][0].lower()
    stop = whatsapp("STOP")
    confirmed = await client.post("/twilio/messages", stop)
    [(confirmation, _)] = parse_twiml(confirmed.text)
    # Twilio retries the first message (same MessageSid) after the STOP.
    retried = await client.post("/twilio/messages", first)
    assert retried.status_code == 200 and parse_twiml(retried.text) == []
    # The STOP's own confirmation is the one message allowed: its retry still gets it.
    assert parse_twiml((await client.post("/twilio/messages", stop)).text) == [(confirmation, ())]
    # Opted back in, a retry of the first message is a normal duplicate again.
    await client.post("/twilio/messages", whatsapp("START"))
    assert "hours" in parse_twiml((await client.post("/twilio/messages", first)).text)[0][0].lower()


async def test_voice_numbers_are_ascii_digits_too(client: WebhookClient) -> None:
    # The voice webhooks read numbers with the same rule (webhooks/fields.py).
    call = {"CallSid": "CA" + "cd" * 16, "AccountSid": "AC" + "a1" * 16, "From": USER, "To": BOT_NUMBER,
            "Direction": "inbound", "ApiVersion": "2010-04-01"}
    status = await client.post("/twilio/voice/status", {**call, "CallStatus": "completed", "CallDuration": "²"})
    assert status.status_code == 400 and "CallDuration" in status.json()["detail"]
    turn = await client.post("/twilio/voice/turn?n=%C2%B2", {**call, "CallStatus": "in-progress", "SpeechResult": "hi"})
    assert turn.status_code == 400  # n=² (percent-encoded as sent)

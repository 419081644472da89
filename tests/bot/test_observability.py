"""Logs are JSON and never carry a phone number or a message body."""

from __future__ import annotations

import json
import logging

import pytest

from bot.messages import Channel
from bot.observability import JsonFormatter, mask_phone, mask_text
from bot.settings import Settings
from bot.storage import RedisStore
from devtools.webhook_client import inbound_form
from tests.conftest import BOT_NUMBER, signed_client
from webhooks.app import create_app


def test_masking() -> None:
    assert mask_phone("+14155550123") == "+141******23"
    assert mask_phone("whatsapp:+14155550123") == "whatsapp:+141******23"
    assert mask_text("secret words") == "<12 chars>"


async def test_turn_logs_are_json_and_masked(
    settings: Settings, redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = signed_client(create_app(settings, store=redis_store))
    logger = logging.getLogger("bot")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="bot")
    try:
        await client.post("/twilio/messages", inbound_form(
            Channel.SMS, "+14155559876", BOT_NUMBER, "my secret insurance id 998877"))
    finally:
        logger.removeHandler(caplog.handler)
    formatted = [JsonFormatter().format(r) for r in caplog.records]
    assert formatted, "the turn was logged"
    for line in formatted:
        json.loads(line)
        assert "+14155559876" not in line
        assert "998877" not in line
    assert any('"intent": ' in line for line in formatted)


async def test_every_sms_reply_logs_its_segments_and_encoding(
    settings: Settings, redis_store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.sms.segments import count_segments
    from devtools.webhook_client import parse_twiml

    client = signed_client(create_app(settings, store=redis_store))
    caplog.set_level(logging.INFO, logger="webhooks")
    expected = []
    for text in ("hi", "how much is a cleaning", "what are your hours? 🙂"):
        answer = await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155559876", BOT_NUMBER, text))
        [(body, _)] = parse_twiml(answer.text)
        count = count_segments(body)
        expected.append([f"{count.segments}x{count.encoding}"])
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.getMessage() == "replies"]
    assert [line["segments"] for line in lines] == expected
    assert all(line["via"] == "twiml" for line in lines)
    total = sum(int(e[0].split("x")[0]) for e in expected)
    metrics = (await client.http.get("/metrics")).text
    assert f'bot_reply_segments_total{{encoding="GSM-7"}} {float(total)}' in metrics

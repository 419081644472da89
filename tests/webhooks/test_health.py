"""Health, readiness and metrics endpoints."""

from __future__ import annotations

from bot.messages import Channel
from devtools.webhook_client import WebhookClient, inbound_form
from tests.conftest import BOT_NUMBER


async def test_healthz(client: WebhookClient) -> None:
    resp = await client.http.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


async def test_readyz_with_redis(client: WebhookClient) -> None:
    resp = await client.http.get("/readyz")
    assert resp.status_code == 200
    assert resp.json()["store"] == "RedisStore"


async def test_metrics_count_requests_turns_and_opt_outs(client: WebhookClient) -> None:
    await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155550111", BOT_NUMBER, "hi"))
    await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155550111", BOT_NUMBER, "STOP"))
    body, headers = client.signed("/twilio/messages", inbound_form(Channel.SMS, "+1", BOT_NUMBER, "x"))
    headers["X-Twilio-Signature"] = "bad"
    await client.http.post("/twilio/messages", content=body, headers=headers)
    text = (await client.http.get("/metrics")).text
    assert 'bot_http_requests_total{endpoint="/twilio/messages",status="200"} 2.0' in text
    assert 'bot_http_requests_total{endpoint="/twilio/messages",status="403"} 1.0' in text
    assert 'bot_turns_total{channel="sms",intent="greet"} 1.0' in text
    assert 'bot_opt_changes_total{action="opt_out",channel="sms"} 1.0' in text
    assert 'bot_errors_total{kind="signature"} 1.0' in text
    assert "bot_http_request_seconds_bucket" in text
    assert 'bot_reply_segments_total{encoding="GSM-7"}' in text

"""POST /twilio/status: signed, forward-only per message, idempotent, acting on error codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from bot.messages import Channel, TemplateMessage
from bot.outbound.ledger import SendRecord
from bot.outbound.models import SendRequest
from bot.outbound.outbox import InlineOutbox
from bot.outbound.suppression import unreachable_key
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from bot.storage.stores import Stores
from devtools.webhook_client import WebhookClient
from tests.conftest import BOT_NUMBER, signed_client
from webhooks.app import create_app
from webhooks.services import Services

USER = "+14155550123"
SID = "SM" + "ab" * 16
KEY = ConversationKey(Channel.WHATSAPP, BOT_NUMBER, USER)


def callback(status: str, sid: str = SID, error_code: int | None = None, channel: Channel = Channel.WHATSAPP,
             to: str = USER) -> dict[str, str]:
    form = {
        "SmsSid": sid, "SmsStatus": status, "MessageStatus": status, "MessageSid": sid,
        "To": channel.address(to), "From": channel.address(BOT_NUMBER),
        "AccountSid": "AC" + "a1" * 16, "ApiVersion": "2010-04-01",
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    return form


# ``app`` and ``client`` (signed, in-process) come from tests/webhooks/conftest.py.


def services(app: FastAPI) -> Services:
    found: Services = app.state.services
    return found


async def state(app: FastAPI, sid: str = SID) -> str | None:
    return await services(app).require_outbound().tracker.state(sid)


def counted(app: FastAPI, status: str, code: str = "") -> float:
    value: float = services(app).metrics.status_callbacks.labels(status, code)._value.get()
    return value


async def test_out_of_order_and_repeated_callbacks_end_in_the_right_state(
    app: FastAPI, client: WebhookClient
) -> None:
    order = ["sent", "queued", "delivered", "sent", "delivered", "queued", "sending"]
    for status in order:
        resp = await client.post("/twilio/status", callback(status))
        assert resp.status_code == 204 and resp.text == ""
    assert await state(app) == "delivered"
    # WhatsApp's read receipt moves it on; nothing moves it back.
    await client.post("/twilio/status", callback("read"))
    await client.post("/twilio/status", callback("delivered"))
    assert await state(app) == "read"
    # Counted once per (message, status), however often Twilio repeats it.
    assert [counted(app, s) for s in ("queued", "sending", "sent", "delivered", "read")] == [1, 1, 1, 1, 1]


async def test_failed_and_delivered_race_first_final_report_wins(app: FastAPI, client: WebhookClient) -> None:
    await client.post("/twilio/status", callback("undelivered", error_code=30003))
    await client.post("/twilio/status", callback("delivered"))
    await client.post("/twilio/status", callback("queued"))
    assert await state(app) == "undelivered"
    assert counted(app, "undelivered", "30003") == 1


async def test_canceled_is_terminal(app: FastAPI, client: WebhookClient) -> None:
    for status in ("scheduled", "canceled", "queued", "sent"):
        await client.post("/twilio/status", callback(status))
    assert await state(app) == "canceled"


async def test_21610_in_a_callback_opts_the_user_out(app: FastAPI, client: WebhookClient,
                                                     redis_store: RedisStore) -> None:
    # No record of the send: the addresses say who it was.
    await client.post("/twilio/status", callback("failed", error_code=21610))
    assert await redis_store.is_opted_out(KEY)
    assert counted(app, "failed", "21610") == 1


async def test_30006_marks_the_number_unreachable(app: FastAPI, client: WebhookClient,
                                                  redis_store: RedisStore) -> None:
    sms_key = ConversationKey(Channel.SMS, BOT_NUMBER, USER)
    await client.post("/twilio/status", callback("undelivered", error_code=30006, channel=Channel.SMS))
    assert await Stores.beside(redis_store).ledger.get(unreachable_key(sms_key)) is not None
    assert not await redis_store.is_opted_out(sms_key)


async def test_63016_submits_the_template_once(settings: Settings, redis_store: RedisStore) -> None:
    app = create_app(settings, store=redis_store)
    outbound = services(app).require_outbound()
    submitted: list[SendRequest] = []

    async def capture(request: SendRequest, *, delay: float = 0.0) -> None:
        submitted.append(request)

    assert isinstance(outbound.outbox, InlineOutbox)
    outbound.outbox.submit = capture  # type: ignore[method-assign]
    welcome = TemplateMessage("welcome_back", {"name": "Ana"})
    request = SendRequest(key=KEY, body="free-form", idempotency_key="reply:SM1:0", fallback_template=welcome)
    record = SendRecord.pending(request, token="t", lease_seconds=60, claimed_at=0)
    await outbound.sender.ledger.complete(record, sid=SID, status="queued")
    client = signed_client(app)
    for _ in range(3):  # repeated callbacks act once
        await client.post(f"/twilio/status?ref={record.ref}", callback("failed", error_code=63016))
    [retry] = submitted
    assert retry.template == welcome and retry.key == KEY
    assert retry.idempotency_key == "reply:SM1:0:window"
    await client.http.aclose()


@pytest.mark.parametrize("field", ["MessageSid", "MessageStatus"])
async def test_missing_fields_400(client: WebhookClient, field: str) -> None:
    form = callback("sent")
    del form[field]
    del form["SmsSid" if field == "MessageSid" else "SmsStatus"]
    resp = await client.post("/twilio/status", form)
    assert resp.status_code == 400 and field in resp.json()["detail"]


async def test_malformed_error_code_400(client: WebhookClient) -> None:
    form = callback("failed")
    form["ErrorCode"] = "abc"
    assert (await client.post("/twilio/status", form)).status_code == 400


async def test_forged_or_missing_signature_403(app: FastAPI, client: WebhookClient) -> None:
    body, headers = client.signed("/twilio/status", callback("delivered"))
    headers["X-Twilio-Signature"] = "forged"
    assert (await client.http.post("/twilio/status", content=body, headers=headers)).status_code == 403
    del headers["X-Twilio-Signature"]
    assert (await client.http.post("/twilio/status", content=body, headers=headers)).status_code == 403
    # A signature for another ref (the query is signed) is forged too.
    body, headers = client.signed("/twilio/status?ref=aaa", callback("delivered"))
    resp = await client.http.post("/twilio/status?ref=bbb", content=body, headers=headers)
    assert resp.status_code == 403
    assert await state(app) is None


async def test_wrong_content_type_415(client: WebhookClient) -> None:
    assert (await client.http.post("/twilio/status", json=callback("sent"))).status_code == 415


async def test_unknown_status_is_accepted(app: FastAPI, client: WebhookClient) -> None:
    assert (await client.post("/twilio/status", callback("partially_delivered"))).status_code == 204
    assert await state(app) is None


async def test_shared_captures_are_accepted(make_settings: Callable[..., Settings], redis_store: RedisStore) -> None:
    captures = json.loads((Path(__file__).parents[1] / "data/twilio/example-payloads.json").read_text())
    app = create_app(make_settings(public_base_url="https://example.com"), store=redis_store)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:8000")
    statuses = {}
    for name, capture in captures.items():
        if not name.startswith("status"):
            continue
        resp = await http.post(
            "/twilio/status", content=capture["raw_body"],
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "X-Twilio-Signature": capture["x_twilio_signature"]},
        )
        assert resp.status_code == 204, (name, resp.text)
        statuses[name] = await state(app, capture["form"]["MessageSid"])
    await http.aclose()
    assert statuses == {"status_sms_delivered": "delivered", "status_whatsapp_read": "read",
                        "status_whatsapp_failed_63016": "failed"}


async def test_metrics_are_exported(app: FastAPI, client: WebhookClient) -> None:
    await client.post("/twilio/status", callback("undelivered", error_code=30003))
    text = (await client.http.get("/metrics")).text
    assert 'bot_status_callbacks_total{error_code="30003",status="undelivered"} 1.0' in text

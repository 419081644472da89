"""POST /twilio/messages: the spine, end to end over HTTP against a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx
import pytest

from bot.engine import TurnContext
from bot.messages import Channel, Reply, TurnResult
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import BOT_NUMBER, signed_client
from tests.support.redis_server import free_port
from webhooks.app import create_app

USER = "+14155550123"
KEY = ConversationKey(Channel.SMS, BOT_NUMBER, USER)


class CountingEcho:
    """A turn handler that echoes and counts how often it really ran."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.runs: list[str] = []
        self.template_context = {"business": {"name": "Test Clinic", "phone": "+1 555 010 0199"}}

    async def handle(self, ctx: TurnContext) -> TurnResult:
        self.runs.append(ctx.message.body)
        if self.delay:
            await asyncio.sleep(self.delay)
        ctx.state.slots.setdefault("seen", []).append(ctx.message.body)
        return TurnResult(replies=(Reply(text=f"echo: {ctx.message.body}"),), intent="echo")


def sms(body: str, **kw: object) -> dict[str, str]:
    return inbound_form(Channel.SMS, USER, BOT_NUMBER, body, **kw)  # type: ignore[arg-type]


async def test_answers_twiml_for_a_signed_message(client: WebhookClient, redis_store: RedisStore) -> None:
    resp = await client.post("/twilio/messages", sms("hi"))
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/xml")
    [(body, _media)] = parse_twiml(resp.text)
    assert "Bright Smile Dental" in body or "Hi" in body
    state = await redis_store.load(KEY)
    assert state is not None and state.turns == 1
    assert [h.role for h in state.history] == ["user", "bot"]


async def test_whatsapp_channel_from_prefix(client: WebhookClient, redis_store: RedisStore) -> None:
    form = inbound_form(Channel.WHATSAPP, USER, BOT_NUMBER, "hello", profile_name="Ana")
    resp = await client.post("/twilio/messages", form)
    assert resp.status_code == 200
    assert "Ana" in parse_twiml(resp.text)[0][0]
    assert await redis_store.load(ConversationKey(Channel.WHATSAPP, BOT_NUMBER, USER)) is not None
    assert await redis_store.load(KEY) is None


class ChoiceEcho:
    """Answers with the option the message picked (a button press or a list pick)."""

    def __init__(self) -> None:
        self.template_context = CountingEcho().template_context

    async def handle(self, ctx: TurnContext) -> TurnResult:
        msg = ctx.message
        return TurnResult(replies=(Reply(text=f"picked {msg.button_payload} ({msg.button_text})"),))


@pytest.mark.parametrize("picked", [
    {"ListId": "service:whitening", "ListTitle": "Whitening"},            # a list-picker pick
    {"ButtonPayload": "service:whitening", "ButtonText": "Whitening"},    # a quick-reply tap
])
async def test_a_list_pick_and_a_button_press_both_pick_the_option(
    settings: Settings, redis_store: RedisStore, picked: dict[str, str]
) -> None:
    client = signed_client(create_app(settings, store=redis_store, handler=ChoiceEcho()))
    form = {**inbound_form(Channel.WHATSAPP, USER, BOT_NUMBER, "Whitening"), **picked, "MessageType": "interactive"}
    resp = await client.post("/twilio/messages", form)
    assert parse_twiml(resp.text) == [("picked service:whitening (Whitening)", ())]


async def test_user_text_is_escaped_in_twiml(settings: Settings, redis_store: RedisStore) -> None:
    app = create_app(settings, store=redis_store, handler=CountingEcho())
    client = signed_client(app)
    nasty = '</Message><Redirect>http://evil</Redirect> & "quotes" <3'
    resp = await client.post("/twilio/messages", sms(nasty))
    assert parse_twiml(resp.text) == [(f"echo: {nasty}", ())]
    assert "<Redirect>" not in resp.text


async def test_unknown_fields_are_accepted(client: WebhookClient) -> None:
    form = sms("hi")
    form["SomeFutureField"] = "whatever"
    assert (await client.post("/twilio/messages", form)).status_code == 200


# -- exactly once --------------------------------------------------------------

async def test_retry_gets_the_same_answer_and_runs_once(
    settings: Settings, redis_store: RedisStore
) -> None:
    handler = CountingEcho()
    client = signed_client(create_app(settings, store=redis_store, handler=handler))
    form = sms("book please")
    first = await client.post("/twilio/messages", form)
    second = await client.post("/twilio/messages", form)
    assert first.text == second.text
    assert handler.runs == ["book please"]
    state = await redis_store.load(KEY)
    assert state is not None and state.turns == 1


async def test_twenty_concurrent_deliveries_across_two_instances(
    make_settings: Callable[..., Settings], redis_url: str, redis_client: object
) -> None:
    handler = CountingEcho(delay=0.2)  # slow enough that the deliveries overlap
    apps = [
        create_app(make_settings(redis_url=redis_url), handler=handler),
        create_app(make_settings(redis_url=redis_url), handler=handler),
    ]
    clients = [signed_client(a) for a in apps]
    form = sms("once only")
    responses = await asyncio.gather(
        *(clients[i % 2].post("/twilio/messages", form) for i in range(20))
    )
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert parse_twiml(responses[0].text) == [("echo: once only", ())]
    assert handler.runs == ["once only"]
    store = RedisStore.from_url(redis_url)
    state = await store.load(KEY)
    await store.close()
    assert state is not None and state.turns == 1 and state.slots["seen"] == ["once only"]


async def test_a_retry_after_the_cached_answer_expired_runs_nothing_and_answers_empty(
    make_settings: Callable[..., Settings], redis_store: RedisStore
) -> None:
    handler = CountingEcho()
    app = create_app(make_settings(dedupe_answer_ttl_seconds=1), store=redis_store, handler=handler)
    client = signed_client(app)
    form = sms("once")
    first = await client.post("/twilio/messages", form)
    assert parse_twiml(first.text) == [("echo: once", ())]
    await asyncio.sleep(1.2)
    late = await client.post("/twilio/messages", form)
    assert late.status_code == 200 and late.headers["content-type"].startswith("text/xml")
    assert parse_twiml(late.text) == []
    assert handler.runs == ["once"]


async def test_a_slow_turn_keeps_its_lease_so_the_next_message_waits(
    make_settings: Callable[..., Settings], redis_store: RedisStore
) -> None:
    # The turn takes 4x its lease: without renewal the second message would
    # skip it as crashed and run first (and the first could not commit).
    settings = make_settings(lock_lease_seconds=0.25, reply_budget_seconds=10)
    handler = CountingEcho(delay=1.0)
    client = signed_client(create_app(settings, store=redis_store, handler=handler))

    async def second() -> httpx.Response:
        await asyncio.sleep(0.1)
        return await client.post("/twilio/messages", sms("second"))

    first, later = await asyncio.gather(client.post("/twilio/messages", sms("first")), second())
    assert parse_twiml(first.text) == [("echo: first", ())]
    assert parse_twiml(later.text) == [("echo: second", ())]
    assert handler.runs == ["first", "second"]
    state = await redis_store.load(KEY)
    assert state is not None and state.slots["seen"] == ["first", "second"]


# -- in order ------------------------------------------------------------------

async def test_ten_messages_from_one_user_in_order(settings: Settings, redis_store: RedisStore) -> None:
    handler = CountingEcho(delay=0.05)
    client = signed_client(create_app(settings, store=redis_store, handler=handler))

    async def send(i: int) -> httpx.Response:
        # Arrival order 0..9; spaced enough that a loaded machine keeps it,
        # close enough that every message queues behind a running turn.
        await asyncio.sleep(i * 0.02)
        return await client.post("/twilio/messages", sms(f"m{i}"))

    responses = await asyncio.gather(*(send(i) for i in range(10)))
    assert [parse_twiml(r.text)[0][0] for r in responses] == [f"echo: m{i}" for i in range(10)]
    expected = [f"m{i}" for i in range(10)]
    assert handler.runs == expected
    state = await redis_store.load(KEY)
    assert state is not None
    assert state.turns == 10
    assert state.slots["seen"] == expected
    assert [h.text for h in state.history if h.role == "user"] == expected


async def test_different_users_run_concurrently(settings: Settings, redis_store: RedisStore) -> None:
    handler = CountingEcho(delay=0.3)
    client = signed_client(create_app(settings, store=redis_store, handler=handler))
    started = time.monotonic()
    await asyncio.gather(*(
        client.post("/twilio/messages", inbound_form(Channel.SMS, f"+1415555{i:04d}", BOT_NUMBER, "hi"))
        for i in range(5)
    ))
    assert time.monotonic() - started < 1.2  # 5 x 0.3 s would be 1.5 s in series


# -- crashes -------------------------------------------------------------------

class Flaky(CountingEcho):
    async def handle(self, ctx: TurnContext) -> TurnResult:
        if ctx.message.body == "boom":
            ctx.state.slots["corrupted"] = True
            raise RuntimeError("bug in a flow")
        return await super().handle(ctx)


async def test_a_crashed_turn_changes_nothing_and_blocks_nothing(
    settings: Settings, redis_store: RedisStore
) -> None:
    client = signed_client(create_app(settings, store=redis_store, handler=Flaky()))
    await client.post("/twilio/messages", sms("before"))
    boom = sms("boom")
    resp = await client.post("/twilio/messages", boom)
    assert resp.status_code == 200
    assert "sorry" in parse_twiml(resp.text)[0][0].lower()
    state = await redis_store.load(KEY)
    assert state is not None and "corrupted" not in state.slots and state.turns == 1
    after = await asyncio.wait_for(client.post("/twilio/messages", sms("after")), timeout=2)
    assert parse_twiml(after.text) == [("echo: after", ())]
    # The failed message was not marked answered: Twilio's retry runs it again.
    retry = await client.post("/twilio/messages", boom)
    assert "sorry" in parse_twiml(retry.text)[0][0].lower()


# -- bad input -----------------------------------------------------------------

async def _state_untouched(store: RedisStore) -> None:
    assert await store.load(KEY) is None


async def test_forged_signature_403(client: WebhookClient, redis_store: RedisStore) -> None:
    body, headers = client.signed("/twilio/messages", sms("hi"))
    headers["X-Twilio-Signature"] = "AAAA" + headers["X-Twilio-Signature"][4:]
    resp = await client.http.post("/twilio/messages", content=body, headers=headers)
    assert resp.status_code == 403
    await _state_untouched(redis_store)


async def test_missing_signature_403(client: WebhookClient, redis_store: RedisStore) -> None:
    body, headers = client.signed("/twilio/messages", sms("hi"))
    del headers["X-Twilio-Signature"]
    resp = await client.http.post("/twilio/messages", content=body, headers=headers)
    assert resp.status_code == 403
    assert "signature" in resp.text.lower()
    await _state_untouched(redis_store)


async def test_signature_for_another_url_403(client: WebhookClient) -> None:
    body, headers = client.signed("/twilio/other", sms("hi"))
    resp = await client.http.post("/twilio/messages", content=body, headers=headers)
    assert resp.status_code == 403


@pytest.mark.parametrize("field", ["From", "To", "MessageSid"])
async def test_missing_required_field_400(field: str, client: WebhookClient, redis_store: RedisStore) -> None:
    form = sms("hi")
    del form[field]
    resp = await client.post("/twilio/messages", form)
    assert resp.status_code == 400
    assert field in resp.json()["detail"]
    await _state_untouched(redis_store)


async def test_missing_field_is_checked_after_the_signature(client: WebhookClient) -> None:
    form = sms("hi")
    del form["From"]
    body, headers = client.signed("/twilio/messages", form)
    headers["X-Twilio-Signature"] = "forged"
    resp = await client.http.post("/twilio/messages", content=body, headers=headers)
    assert resp.status_code == 403


async def test_oversized_body_413(client: WebhookClient, redis_store: RedisStore) -> None:
    resp = await client.post("/twilio/messages", sms("x" * 70_000))
    assert resp.status_code == 413
    await _state_untouched(redis_store)


async def test_oversized_body_without_content_length_413(client: WebhookClient) -> None:
    body, headers = client.signed("/twilio/messages", sms("x" * 70_000))

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(body), 8192):
            yield body[i : i + 8192]

    resp = await client.http.post("/twilio/messages", content=chunks(), headers=headers)
    assert resp.status_code == 413


async def test_wrong_content_type_415(client: WebhookClient, redis_store: RedisStore) -> None:
    resp = await client.http.post("/twilio/messages", json=sms("hi"))
    assert resp.status_code == 415
    await _state_untouched(redis_store)


async def test_invalid_utf8_400(client: WebhookClient, redis_store: RedisStore) -> None:
    body = b"From=%2B14155550123&To=%2B15005550006&MessageSid=SM1&Body=%FF%FE"
    resp = await client.http.post(
        "/twilio/messages", content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert resp.status_code == 400
    assert "UTF-8" in resp.json()["detail"]
    await _state_untouched(redis_store)


async def test_redis_down_answers_503_quickly(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    client = signed_client(app)
    started = time.monotonic()
    resp = await client.post("/twilio/messages", sms("hi"))
    assert resp.status_code == 503
    assert time.monotonic() - started < 3
    ready = await client.http.get("/readyz")
    assert ready.status_code == 503


async def test_skip_signature_is_refused_in_production(make_settings: Callable[..., Settings]) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="TWILIO_SKIP_SIGNATURE_CHECK"):
        make_settings(environment="production", twilio_skip_signature_check=True)


async def test_skip_signature_in_development(make_settings: Callable[..., Settings], redis_store: RedisStore) -> None:
    app = create_app(make_settings(environment="development", twilio_skip_signature_check=True),
                     store=redis_store)
    client = signed_client(app)
    body, headers = client.signed("/twilio/messages", sms("hi"))
    del headers["X-Twilio-Signature"]
    assert (await client.http.post("/twilio/messages", content=body, headers=headers)).status_code == 200


async def test_shared_captures_are_served(make_settings: Callable[..., Settings], redis_store: RedisStore) -> None:
    import json
    from pathlib import Path

    captures = json.loads((Path(__file__).parents[1] / "data/twilio/example-payloads.json").read_text())
    app = create_app(make_settings(twilio_auth_token="12345", public_base_url="https://example.com"),
                     store=redis_store)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://internal:8000")
    for name, capture in captures.items():
        if not name.startswith(("sms", "mms", "whatsapp")):
            continue
        resp = await http.post(
            "/twilio/inbound", content=capture["raw_body"],
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "X-Twilio-Signature": capture["x_twilio_signature"]},
        )
        assert resp.status_code == 200, (name, resp.text)
    await http.aclose()

"""Twilio's rules at create time: validation codes, templates, windows, opt-outs, auth, list."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot.clock import FrozenClock
from bot.messages import Channel, Choice
from bot.settings import load_settings
from devtools.simulator import ContentTemplate, CreateMessageRequest, Simulator, SimulatorConfig, TwilioApiError
from tests.devtools.simulator.conftest import (
    ACCOUNT_SID,
    BOT,
    REMINDER,
    SERVICE,
    USER,
    FakeBot,
    basic_auth,
    messages_path,
)

WA_USER, WA_BOT = Channel.WHATSAPP.address(USER), Channel.WHATSAPP.address(BOT)
VARS = json.dumps({"1": "Ana", "2": "Tue 3pm"})


async def create(api: httpx.AsyncClient, **form: Any) -> httpx.Response:
    return await api.post(messages_path(), data=form)


async def error_code(api: httpx.AsyncClient, **form: Any) -> int:
    resp = await create(api, **form)
    assert resp.status_code == 400, resp.text
    code: int = resp.json()["code"]
    return code


@pytest.mark.parametrize(
    ("form", "code"),
    [
        ({"From": BOT, "Body": "x"}, 21604),
        ({"To": USER, "Body": "x"}, 21603),
        ({"To": USER, "From": BOT}, 21619),
        ({"To": USER, "From": BOT, "Body": ""}, 21619),
        ({"To": USER, "From": BOT, "Body": "x" * 1601}, 21617),
        ({"To": USER, "From": BOT, "Body": "🙂" * 801}, 21617),  # 1602 UTF-16 units
        ({"To": "4155550123", "From": BOT, "Body": "x"}, 21211),
        ({"To": "+1415555012345678", "From": BOT, "Body": "x"}, 21211),
        ({"To": USER, "From": "Acme", "Body": "x"}, 21212),
        ({"To": WA_USER, "From": BOT, "Body": "x"}, 63007),
        ({"To": USER, "From": BOT, "ContentSid": "HX" + "9" * 32}, 21655),
        ({"To": USER, "From": BOT, "ContentSid": REMINDER.sid, "ContentVariables": "{not json"}, 21656),
        ({"To": USER, "From": BOT, "ContentSid": REMINDER.sid, "ContentVariables": '{"1": "Ana"}'}, 63028),
        ({"To": USER, "From": BOT, "ContentSid": REMINDER.sid}, 63028),
        (
            {
                "To": USER,
                "From": BOT,
                "ContentSid": REMINDER.sid,
                "ContentVariables": json.dumps({"1": "Ana", "2": "x", "3": "y"}),
            },
            63028,
        ),
        (
            {
                "To": USER,
                "From": BOT,
                "ContentSid": REMINDER.sid,
                "ContentVariables": json.dumps({"1": "A" * 1000, "2": "x"}),
            },
            63021,
        ),
        ({"To": USER, "MessagingServiceSid": "MG" + "0" * 32, "Body": "x"}, 21701),
    ],
    ids=[
        "no-to",
        "no-from",
        "no-content",
        "blank-body",
        "too-long",
        "too-long-utf16",
        "not-e164",
        "too-many-digits",
        "alphanumeric-from",
        "channel-mismatch",
        "unknown-content",
        "bad-variables",
        "missing-variable",
        "no-variables",
        "extra-variable",
        "content-too-long",
        "unknown-service",
    ],
)
async def test_rejections(api: httpx.AsyncClient, form: dict[str, str], code: int) -> None:
    assert await error_code(api, **form) == code


async def test_exactly_1600_is_accepted(api: httpx.AsyncClient, sim: Simulator) -> None:
    resp = await create(api, To=USER, From=BOT, Body="x" * 1600)
    assert resp.status_code == 201
    assert resp.json()["num_segments"] == "11"  # 1600 GSM-7 chars, 153 per segment
    await sim.drain()


@pytest.mark.parametrize(
    ("to", "from_", "body", "segments"),
    [
        (USER, BOT, "x" * 160, "1"),
        (USER, BOT, "x" * 161, "2"),
        (USER, BOT, "ç" * 70, "1"),
        (USER, BOT, "ç" * 71, "2"),
        (WA_USER, WA_BOT, "x" * 1000, "1"),
    ],
)
async def test_num_segments_from_the_segment_counter(
    api: httpx.AsyncClient, sim: Simulator, to: str, from_: str, body: str, segments: str
) -> None:
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    resp = await create(api, To=to, From=from_, Body=body)
    assert resp.json()["num_segments"] == segments
    stored = sim.get_message(resp.json()["sid"])
    assert stored is not None and stored.segments is not None
    assert stored.segments.encoding == ("UCS-2" if "ç" in body else "GSM-7")
    await sim.drain()


async def test_template_renders_and_keeps_buttons_on_whatsapp(api: httpx.AsyncClient, sim: Simulator) -> None:
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    body = (await create(api, To=WA_USER, From=WA_BOT, ContentSid=REMINDER.sid, ContentVariables=VARS)).json()
    assert body["body"] == "Hi Ana, your cleaning is on Tue 3pm. Still good?"
    stored = sim.get_message(body["sid"])
    assert stored is not None and stored.buttons == REMINDER.buttons
    assert stored.content_sid == REMINDER.sid and dict(stored.content_variables) == {"1": "Ana", "2": "Tue 3pm"}
    sms = (await create(api, To=USER, From=BOT, ContentSid=REMINDER.sid, ContentVariables=VARS)).json()
    assert sim.get_message(sms["sid"]).buttons == ()  # type: ignore[union-attr]
    await sim.drain()


def test_template_sid_is_checked() -> None:
    with pytest.raises(ValueError, match="HX"):
        ContentTemplate(sid="HX123", name="x", body="y")


# -- the WhatsApp window -------------------------------------------------------


async def test_window_in_callback_mode(api: httpx.AsyncClient, sim: Simulator, clock: FrozenClock) -> None:
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    clock.advance(timedelta(hours=24))
    inside = (await create(api, To=WA_USER, From=WA_BOT, Body="just in time")).json()
    clock.advance(timedelta(seconds=1))
    outside = (await create(api, To=WA_USER, From=WA_BOT, Body="too late")).json()
    template = (await create(api, To=WA_USER, From=WA_BOT, ContentSid=REMINDER.sid, ContentVariables=VARS)).json()
    assert inside["status"] == outside["status"] == template["status"] == "queued"
    await sim.drain()
    final = {k: sim.get_message(v["sid"]) for k, v in {"in": inside, "out": outside, "tpl": template}.items()}
    assert final["in"].status == "read"  # type: ignore[union-attr]
    assert (final["out"].status, final["out"].error_code) == ("failed", 63016)  # type: ignore[union-attr]
    assert final["tpl"].status == "read"  # type: ignore[union-attr]


async def test_window_reject_mode(make_sim: Callable[..., Simulator], clock: FrozenClock) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, window_errors="reject"))
    with pytest.raises(TwilioApiError) as info:
        await sim.create_message(CreateMessageRequest(to=WA_USER, from_=WA_BOT, body="cold"))
    assert info.value.code == 63016 and info.value.status == 400
    await sim.http.aclose()


async def test_session_only_templates_need_the_window(api: httpx.AsyncClient, sim: Simulator) -> None:
    picker = ContentTemplate(
        sid="HX" + "2" * 32,
        name="pick",
        body="Pick a time",
        buttons=(Choice("a", "9am"),),
        content_type="twilio/list-picker",
    )
    sim.register_template(picker)
    created = (await create(api, To=WA_USER, From=WA_BOT, ContentSid=picker.sid)).json()
    await sim.drain()
    assert sim.get_message(created["sid"]).error_code == 63016  # type: ignore[union-attr]


async def test_sms_has_no_window(api: httpx.AsyncClient, sim: Simulator) -> None:
    assert (await create(api, To=USER, From=BOT, Body="cold SMS is fine")).status_code == 201
    await sim.drain()


# -- opt-outs and senders --------------------------------------------------------


async def test_opt_out_is_per_channel_user_and_sender(api: httpx.AsyncClient, sim: Simulator) -> None:
    sim.opt_out(Channel.SMS, user=USER, bot=BOT)
    assert await error_code(api, To=USER, From=BOT, Body="x") == 21610
    sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    assert (await create(api, To=WA_USER, From=WA_BOT, Body="x")).status_code == 201
    assert (await create(api, To=USER, From="+15558675310", Body="x")).status_code == 201
    assert (await create(api, To="+14155550100", From=BOT, Body="x")).status_code == 201
    sim.opt_in(Channel.SMS, user=USER, bot=BOT)
    assert (await create(api, To=USER, From=BOT, Body="x")).status_code == 201
    await sim.drain()


async def test_messaging_service_uses_the_sticky_sender(make_sim: Callable[..., Simulator]) -> None:
    second = "+15558675310"
    sim = make_sim(messaging_services={SERVICE: [BOT, second]})
    fresh = await sim.create_message(CreateMessageRequest(to=USER, messaging_service_sid=SERVICE, body="x"))
    assert fresh.bot == BOT  # first of the pool
    sim.record_inbound_time(Channel.SMS, user=USER, bot=second)
    sticky = await sim.create_message(CreateMessageRequest(to=USER, messaging_service_sid=SERVICE, body="x"))
    assert sticky.bot == second
    await sim.drain()
    await sim.http.aclose()


# -- auth, paths, list -----------------------------------------------------------------


async def test_auth_failures(api: httpx.AsyncClient) -> None:
    for headers in (
        basic_auth(token="nope"),
        basic_auth(sid="AC" + "0" * 32),
        {"Authorization": "Bearer x"},
        {"Authorization": "Basic !!!"},
    ):
        resp = await api.get(messages_path(), headers=headers)
        assert (resp.status_code, resp.json()["code"]) == (401, 20003)
        assert resp.headers["www-authenticate"] == 'Basic realm="Twilio API"'
    api.headers.pop("Authorization")
    assert (await api.get(messages_path())).status_code == 401


async def test_other_accounts_are_not_found(api: httpx.AsyncClient) -> None:
    resp = await api.get(messages_path("AC" + "0" * 32))
    assert (resp.status_code, resp.json()["code"]) == (404, 20404)


async def test_list_filters(api: httpx.AsyncClient, sim: Simulator, clock: FrozenClock) -> None:
    await create(api, To=USER, From=BOT, Body="a")
    await create(api, To="+14155550100", From=BOT, Body="b")
    await sim.drain()
    clock.advance(timedelta(days=2))
    await create(api, To=USER, From=BOT, Body="c")
    await sim.drain()

    async def bodies(**params: str) -> list[str]:
        resp = await api.get(messages_path(), params=params)
        assert resp.status_code == 200, resp.text
        return [m["body"] for m in resp.json()["messages"]]

    assert await bodies(To=USER) == ["c", "a"]
    assert await bodies(From=BOT) == ["c", "b", "a"]
    assert await bodies(DateSent="2026-03-02") == ["b", "a"]
    assert await bodies(**{"DateSent>": "2026-03-03T00:00:00Z"}) == ["c"]
    assert await bodies(**{"DateSent<": "2026-03-03"}) == ["b", "a"]
    bad = await api.get(messages_path(), params={"DateSent": "yesterday"})
    assert (bad.status_code, bad.json()["code"]) == (400, 20001)


async def test_list_pages_stay_stable_while_messages_arrive(api: httpx.AsyncClient, sim: Simulator) -> None:
    for i in range(4):
        await create(api, To=USER, From=BOT, Body=f"n{i}")
    first = (await api.get(messages_path(), params={"PageSize": 2})).json()
    await create(api, To=USER, From=BOT, Body="newcomer")
    second = (await api.get(first["next_page_uri"])).json()
    assert [m["body"] for m in first["messages"] + second["messages"]] == ["n3", "n2", "n1", "n0"]
    await sim.drain()


# -- construction -----------------------------------------------------------------


def test_from_settings(fake_bot: FakeBot) -> None:
    settings = load_settings(
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token="tok",
        public_base_url="https://bot.example.com/",
        sms_keyword_replies="bot",
        environment="test", allow_test_environment=True,
    )
    sim = Simulator.from_settings(settings, webhook_url="http://127.0.0.1:8000/twilio/messages")
    assert sim.webhook_public_url == "https://bot.example.com/twilio/messages"
    assert sim.auth_token == "tok" and sim.config.twilio_keyword_replies is False


def test_bad_construction() -> None:
    with pytest.raises(ValueError, match="account_sid"):
        Simulator(account_sid="nope", auth_token="x")
    with pytest.raises(ValueError, match="MessagingServiceSid"):
        Simulator(account_sid=ACCOUNT_SID, auth_token="x", messaging_services={"MG1": [BOT]})

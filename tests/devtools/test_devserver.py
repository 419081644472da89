"""``bot dev``: one server with the bot, the simulated Twilio API, the dev phone
and the conversation view; ``bot serve``'s app has none of them.

The dev app calls itself over HTTP (signed webhooks, the SDK's REST calls), so
it runs under a real uvicorn on a free port (``tests.support.servers.run_app``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.settings import Settings, load_settings
from bot.storage import MemoryStore, RedisStore
from devtools.devserver import create_dev_app
from devtools.simulator import CreateMessageRequest
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.redis_server import free_port
from tests.support.servers import run_app
from webhooks.app import create_app

BOT = "+15005550006"
# twilio 9.13's async client (the bot's sender) uses aiohttp's deprecated BasicAuth.
pytestmark = pytest.mark.filterwarnings(r"ignore:(BasicAuth|The 'auth' parameter) is deprecated:DeprecationWarning")
DEV_PREFIXES = ("/dev", "/2010-04-01")


def route_paths(app: FastAPI) -> set[str]:
    """Every path the app routes, through included routers (FastAPI >= 0.16x
    keeps them as ``_IncludedRouter`` entries with the original router inside)."""

    def walk(routes: list[Any], prefix: str) -> Iterator[str]:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:
                yield from walk(included.routes, prefix + getattr(route.include_context, "prefix", ""))
            elif getattr(route, "path", None) is not None:
                yield prefix + route.path

    return set(walk(app.routes, ""))


def dev_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "environment": "test",
        "allow_test_environment": True,
        "redis_url": "",
        "log_json": True,
    }
    values.update(overrides)
    return load_settings(**values)


# -- what is mounted where ----------------------------------------------------------


async def test_production_app_mounts_no_dev_routes(settings: Settings) -> None:
    app = create_app(settings)
    paths = route_paths(app)
    assert "/twilio/messages" in paths
    assert [p for p in paths if p.startswith(DEV_PREFIXES) or p == "/"] == []
    # And by behaviour, whatever the router's internals.
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot") as http:
        for method, path in [
            ("GET", "/dev/"),
            ("GET", "/dev/api/events"),
            ("GET", "/dev/conversations"),
            ("GET", "/dev/static/app.js"),
            ("POST", f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"),
        ]:
            assert (await http.request(method, path)).status_code == 404, path


def test_dev_app_mounts_simulator_phone_and_conversation_view() -> None:
    app = create_dev_app(dev_settings(), store=MemoryStore())
    paths = route_paths(app)
    assert {"/twilio/messages", "/healthz"} <= paths  # the bot itself
    assert {
        "/2010-04-01/Accounts/{account_sid}/Messages.json",
        "/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
    } <= paths
    assert {
        "/dev/",
        "/dev/static",
        "/dev/api/events",
        "/dev/api/send",
        "/dev/conversations",
        "/dev/conversations/{channel}/{bot}/{user}",
    } <= paths


def test_dev_settings_point_the_bot_at_itself() -> None:
    app = create_dev_app(dev_settings(), base_url="http://127.0.0.1:9999/")
    settings = app.state.services.settings
    assert settings.environment == "development"
    assert settings.twilio_api_base_url == "http://127.0.0.1:9999"
    assert settings.public_base_url == "http://127.0.0.1:9999"
    assert app.state.simulator.webhook_url == "http://127.0.0.1:9999/twilio/messages"
    assert isinstance(app.state.services.store, MemoryStore)


async def test_a_configured_messaging_service_sends_from_the_phones_bot_number() -> None:
    service = "MG" + "1" * 32
    app = create_dev_app(dev_settings(twilio_messaging_service_sid=service), store=MemoryStore(), step_delay=0)
    sim = app.state.simulator
    sent = await sim.create_message(CreateMessageRequest(to="+14155550127", messaging_service_sid=service, body="Hi"))
    await sim.aclose()
    assert sent.from_ == BOT


def test_dev_app_uses_redis_when_configured(redis_url: str) -> None:
    app = create_dev_app(dev_settings(redis_url=redis_url))
    assert isinstance(app.state.services.store, RedisStore)


# -- content templates ------------------------------------------------------------


def test_simulator_knows_the_bots_content_templates() -> None:
    app = create_dev_app(dev_settings(), store=MemoryStore())
    registry = app.state.services.require_outbound().templates
    known = {t.name: sid for sid, t in app.state.simulator.templates.items()}
    assert len(registry) > 0
    assert {t.name: t.content_sid for t in registry}.items() <= known.items()


# -- the running dev server --------------------------------------------------------


class DevServer:
    def __init__(self, app: FastAPI, url: str) -> None:
        self.app = app
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def send(self, channel: str, user: str, **fields: Any) -> httpx.Response:
        return self.http.post("/dev/api/send", json={"channel": channel, "user": user, **fields})

    def snapshot(self, channel: str, user: str) -> dict[str, Any]:
        response = self.http.get(f"/dev/api/phones/{channel}/{user.replace('+', '%2B')}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def wait(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError("condition not met in time")
            time.sleep(0.02)

    def rest_client(self) -> Client:
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = self.url
        return client


@pytest.fixture(scope="module")
def server() -> Iterator[DevServer]:
    port = free_port()
    app = create_dev_app(dev_settings(), base_url=f"http://127.0.0.1:{port}", store=MemoryStore(), step_delay=0)
    with run_app(app, port=port) as url:
        dev = DevServer(app, url)
        yield dev
        dev.http.close()


def bot_messages(server: DevServer, channel: str, user: str, status: str) -> list[dict[str, Any]]:
    """The bot's messages to one phone that have reached ``status``."""
    messages = server.snapshot(channel, user)["messages"]
    return [m for m in messages if m["origin"] == "bot" and m["status"] == status]


def test_phone_texts_the_bot_through_signed_webhooks(server: DevServer) -> None:
    user = "+14155550120"
    response = server.send("sms", user, body="hi")
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status_code"] == 200 and result["error_code"] is None  # the signature was accepted
    reply = server.wait(lambda: bot_messages(server, "sms", user, "delivered"))[0]
    assert "Bright Smile Dental" in reply["body"]
    assert reply["segments"]["encoding"] == "GSM-7"

    conversation = server.http.get(f"/dev/api/conversations/sms/{BOT}/{user.replace('+', '%2B')}").json()
    (turn,) = conversation["turns"]
    assert turn["intent"] == "greet" and turn["text"] == "hi" and turn["confidence"] == 1.0
    assert conversation["state"]["user"] == user and conversation["state"]["turns"] == 1


def test_bot_rest_calls_land_in_the_simulator(server: DevServer) -> None:
    user = "+14155550121"
    assert server.app.state.services.twilio.api.base_url == server.url  # what the bot's SDK uses
    sent = server.rest_client().messages.create(to=user, from_=BOT, body="Your reminder")
    snapshot = server.snapshot("sms", user)
    assert [m["sid"] for m in snapshot["messages"]] == [sent.sid]


def test_failure_injection(server: DevServer) -> None:
    user = "+14155550122"
    assert server.http.put(f"/dev/api/failures/sms/{user}", json={"error_code": 30003}).status_code == 200
    assert server.snapshot("sms", user)["failure"] == {"error_code": 30003, "status": "undelivered", "rate": 1.0}
    server.send("sms", user, body="hi")
    failed = server.wait(lambda: bot_messages(server, "sms", user, "undelivered"))
    assert failed[0]["error_code"] == 30003

    assert server.http.delete(f"/dev/api/failures/sms/{user}").status_code == 204
    server.send("sms", user, body="hours?")
    server.wait(lambda: bot_messages(server, "sms", user, "delivered"))


def test_stop_then_a_refused_send_is_shown(server: DevServer) -> None:
    user = "+14155550123"
    result = server.send("sms", user, body="STOP").json()
    assert result["keyword_reply"] is not None  # Twilio's own confirmation
    snapshot = server.wait(lambda: (s := server.snapshot("sms", user))["opted_out"] and s["bot_opted_out"] and s)
    assert any(m["origin"] == "twilio" and "unsubscribed" in m["body"] for m in snapshot["messages"])

    with pytest.raises(TwilioRestException) as refused:
        server.rest_client().messages.create(to=user, from_=BOT, body="Reminder: tomorrow 3 PM")
    assert refused.value.code == 21610
    (rejection,) = server.snapshot("sms", user)["rejections"]
    assert rejection["code"] == 21610 and rejection["body"] == "Reminder: tomorrow 3 PM"


def test_live_feed_starts_ready_then_streams_events(server: DevServer) -> None:
    user = "+14155550124"
    with server.http.stream("GET", "/dev/api/events") as stream:
        lines = stream.iter_lines()
        assert next(line for line in lines if line.startswith("event:")) == "event: ready"
        server.send("sms", user, body="hi")
        for line in lines:
            if line.startswith("data:") and user in line:
                event = json.loads(line.removeprefix("data:"))
                assert event["kind"] == "message.created" and event["message"]["body"] == "hi"
                break


def test_bad_sends_are_refused_with_a_reason(server: DevServer) -> None:
    assert server.send("sms", "12345", body="hi").status_code == 422
    assert server.send("sms", BOT, body="hi").status_code == 422
    assert server.send("sms", "+14155550125", location={"latitude": 1, "longitude": 2}).status_code == 422
    response = server.send("whatsapp", "+14155550125", image="../secrets")
    assert response.status_code == 422 and "unknown sample image" in response.json()["detail"]
    assert server.send("sms", "+14155550125", body="   ").status_code == 422


def test_sample_images_are_served(server: DevServer) -> None:
    config = server.http.get("/dev/api/config").json()
    for image in config["images"]:
        response = httpx.get(image["url"])
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"


def test_conversation_pages_escape_user_text(server: DevServer) -> None:
    user = "+14155550126"
    server.send("whatsapp", user, body="<script>alert(1)</script> hours?")
    listing = server.http.get("/dev/conversations").text
    assert user in listing and "<script>alert" not in listing and "&lt;script&gt;" in listing
    page = server.http.get(f"/dev/conversations/whatsapp/{BOT}/{user.replace('+', '%2B')}").text
    assert "hours" in page and "Stored state" in page and "<script>alert" not in page


def test_home_redirects_to_the_phone(server: DevServer) -> None:
    response = server.http.get("/", follow_redirects=True)
    assert response.status_code == 200 and "Dev phone" in response.text


def test_the_clock_panel_refuses_bad_input_with_a_reason(server: DevServer) -> None:
    for advance in ("soon", "0s", "-1h"):
        response = server.http.post("/dev/api/clock", json={"advance": advance})
        assert response.status_code == 422, advance
    assert "9h30m" in server.http.post("/dev/api/clock", json={"advance": "soon"}).json()["detail"]
    to = [{"channel": "sms", "user": "+14155550127"}]
    unknown = server.http.post("/dev/api/broadcast", json={"template": "no_such_template", "to": to})
    assert unknown.status_code == 422 and "no_such_template" in unknown.json()["detail"]
    missing = server.http.post("/dev/api/broadcast", json={"template": "welcome_back", "to": to})
    assert missing.status_code == 422 and "name" in missing.json()["detail"]  # its variable
    bad_number = server.http.post("/dev/api/broadcast", json={
        "template": "welcome_back", "variables": {"name": "Ana"}, "to": [{"channel": "sms", "user": "12345"}]})
    assert bad_number.status_code == 422 and "E.164" in bad_number.json()["detail"]
    assert server.http.post("/dev/api/broadcast", json={"template": "welcome_back", "to": []}).status_code == 422
    job = server.http.post("/dev/api/jobs/nope")
    assert job.status_code == 404 and "reminders" in job.json()["detail"]
    assert server.http.get("/dev/api/held/sms/%2B14155550127").json() == {"held": []}
    assert server.snapshot("sms", "+14155550127")["with_staff"] is None


def test_the_bot_and_the_simulator_share_one_clock_the_dev_phone_can_move() -> None:
    app = create_dev_app(dev_settings(), store=MemoryStore())
    clock = app.state.services.clock
    assert app.state.simulator.clock is clock
    before = clock.now()
    clock.advance(timedelta(hours=9, minutes=30))
    assert clock.now() - before >= timedelta(hours=9, minutes=30)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(timedelta(seconds=-1))


def test_the_conversation_view_shows_each_appointments_status(server: DevServer) -> None:
    user = "+14155550129"
    server.send("sms", user, body="book a cleaning next tuesday at 10am")
    server.wait(lambda: bot_messages(server, "sms", user, "delivered"))
    server.send("sms", user, body="yes")
    server.wait(lambda: [m for m in bot_messages(server, "sms", user, "delivered") if "booked" in m["body"]])
    path = f"sms/{BOT}/{user.replace('+', '%2B')}"
    conversation = server.http.get(f"/dev/api/conversations/{path}").json()
    (appt,) = conversation["appointments"]
    assert appt["service"] == "cleaning" and appt["status"] == "booked"
    assert [(c["status"], c["source"]) for c in appt["changes"]] == [("booked", "reply")]
    page = server.http.get(f"/dev/conversations/{path}").text
    assert "<strong>booked</strong> cleaning" in page and "booked by reply" in page

"""The dev phone in a real browser: headless Chromium (Debian's ``chromium``)
driven by Playwright against ``create_dev_app`` under uvicorn.

These tests run in CI and never skip: without ``/usr/bin/chromium`` they fail
with a message saying how to install it. Screenshots land in
``tests/artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.clock import FrozenClock
from bot.messages import Choice
from bot.settings import load_settings
from bot.storage import MemoryStore
from devtools.devserver import create_dev_app
from devtools.simulator import ContentTemplate
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.support.redis_server import free_port
from tests.support.servers import run_app

# twilio 9.13's async client (the bot's sender) uses aiohttp's deprecated
# BasicAuth; the warning is twilio's to fix (as in test_sdk.py).
ASYNC_SDK_WARNING = r"ignore:(BasicAuth|The 'auth' parameter) is deprecated:DeprecationWarning"
pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings(ASYNC_SDK_WARNING)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
BOT = "+15005550006"
# Monday 2 March 2026, 09:00 in New York: "tomorrow at 3pm" is a Tuesday afternoon, open.
MONDAY_MORNING = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
REMINDER = ContentTemplate(
    sid="HX" + "d0" * 16,
    name="dev_reminder",
    body="Hi {{1}}, your cleaning is on {{2}}. Still good?",
    buttons=(Choice("confirm", "Confirm"), Choice("reschedule", "Reschedule")),
    content_type="twilio/quick-reply",
)
CHANNEL_LABEL = {"sms": "SMS", "whatsapp": "WhatsApp"}


@dataclass
class DevServer:
    url: str
    app: Any

    def rest_client(self) -> Client:
        """The official SDK pointed at the dev server, as the bot's sender is."""
        client = Client(ACCOUNT_SID, AUTH_TOKEN)
        client.api.base_url = self.url
        return client

    def snapshot(self, channel: str, user: str) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/dev/api/phones/{channel}/{user.replace('+', '%2B')}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


#: How long an ``expect`` waits for the page: the dev server does real work (webhooks, status
#: steps, callbacks), which on a loaded CI machine takes longer than Playwright's 5 s default.
EXPECT_TIMEOUT_MS = 20_000


@pytest.fixture(autouse=True)
def patient_expect() -> Iterator[None]:
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    yield
    expect.set_options(timeout=5_000)  # Playwright's default


# Module scope, not session: while Playwright's sync API is open, its event
# loop counts as running in this thread, and async tests after this module
# could not start theirs. One browser and one server serve every test here.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"The browser tests need Debian's chromium at {CHROMIUM}: run ./scripts/setup "
            "or `apt-get install chromium`. They do not skip.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@contextmanager
def serve_dev_app(clock: FrozenClock, templates: Sequence[ContentTemplate] = ()) -> Iterator[DevServer]:
    """``create_dev_app`` (memory store, quick status steps) under uvicorn at a free port."""
    settings = load_settings(
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, environment="test", allow_test_environment=True,
        redis_url="",
    )
    port = free_port()
    app = create_dev_app(
        settings,
        base_url=f"http://127.0.0.1:{port}",
        store=MemoryStore(),
        clock=clock,
        templates=templates,
        step_delay=0.05,
    )
    with run_app(app, port=port) as url:
        yield DevServer(url, app)


@contextmanager
def open_dev_phone(browser: Browser, url: str) -> Iterator[Page]:
    """The dev phone in a fresh browser context, live; no page error or console error allowed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.goto(f"{url}/dev/")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    yield page
    context.close()  # before the server stops: it waits for open event streams
    assert problems == []


@pytest.fixture(scope="module")
def dev_server() -> Iterator[DevServer]:
    with serve_dev_app(FrozenClock(MONDAY_MORNING), templates=[REMINDER]) as server:
        yield server


@pytest.fixture
def page(browser: Browser, dev_server: DevServer) -> Iterator[Page]:
    with open_dev_phone(browser, dev_server.url) as page:
        yield page


def add_phone(page: Page, channel: str, number: str) -> Locator:
    """Add a phone panel through the form, as a developer would."""
    form = page.locator("#add-phone")
    form.get_by_label(CHANNEL_LABEL[channel], exact=True).check()
    form.get_by_label("Your number").select_option("custom")
    form.get_by_label("Custom number (E.164)").fill(number)
    form.get_by_role("button", name="Add phone").click()
    phone = page.get_by_role("region", name=f"{CHANNEL_LABEL[channel]} phone {number}")
    expect(phone).to_be_visible()
    return phone


def say(phone: Locator, text: str) -> None:
    phone.get_by_role("textbox", name="Message", exact=True).fill(text)
    phone.get_by_role("button", name="Send", exact=True).click()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"devphone-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def test_sms_hi_gets_a_reply_with_segments_and_ticks(page: Page) -> None:
    phone = add_phone(page, "sms", "+14155550160")
    say(phone, "hi")

    sent = phone.locator(".msg-user").last
    expect(sent).to_contain_text("hi")
    expect(sent.locator(".webhook")).to_contain_text("bot answered 200")  # signed webhook accepted
    reply = phone.locator(".msg-bot").last
    expect(reply).to_contain_text("Bright Smile Dental")
    expect(reply.locator(".segments")).to_have_text(re.compile(r"GSM-7 · 1 segment · \d+ chars"))
    expect(reply.locator(".status")).to_have_text(re.compile("Delivered"))

    # Several phones side by side: the two default ones and this one; remove one.
    expect(page.locator(".phone")).to_have_count(3)
    page.get_by_role("button", name="Remove SMS phone +14155550100").click()
    expect(page.locator(".phone")).to_have_count(2)
    screenshot(page, "sms")


def test_whatsapp_booking_through_quick_reply_buttons(page: Page) -> None:
    phone = add_phone(page, "whatsapp", "+14155550161")
    say(phone, "book a cleaning tomorrow at 3pm")

    offer = phone.locator(".msg-bot").last
    expect(offer).to_contain_text("Book a cleaning on Tue, Mar 3 at 3:00 PM?")
    expect(offer.locator(".body strong").first).to_have_text("Tue, Mar 3 at 3:00 PM")  # WhatsApp *bold*
    # Outbound sends the Brain's choices as a quick-reply content template over REST.
    expect(offer.locator(".template")).to_contain_text("Template quick_reply_2")
    offer.get_by_role("button", name="Yes").click()

    pressed = phone.locator(".msg-user").last
    expect(pressed).to_contain_text("Pressed a quick reply")
    expect(pressed).to_contain_text("Yes")
    expect(phone.locator(".msg-bot").last).to_contain_text("You're booked!")
    expect(offer.locator(".status")).to_have_text(re.compile("Read"))
    screenshot(page, "desktop")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "390")

    # The conversation view: each turn's intent, flow and step, and the stored state.
    page.set_viewport_size({"width": 1280, "height": 900})
    with page.context.expect_page() as opened:  # a new tab: the phone stays live
        phone.get_by_role("link", name=re.compile("Turns of WhatsApp phone")).click()
    view = opened.value
    expect(view).to_have_url(re.compile(r"/dev/conversations/whatsapp/%2B15005550006/%2B14155550161$"))
    rows = view.locator("table.turns tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("book")
    expect(rows.nth(0)).to_contain_text("book · confirm")  # flow · step
    expect(rows.nth(0)).to_contain_text('"service": "cleaning"')
    expect(rows.nth(1)).to_contain_text("[button yes] Yes")
    expect(view.locator("pre.state")).to_contain_text('"user": "+14155550161"')
    screenshot(view, "conversation")
    view.get_by_role("link", name="Conversations").click()
    expect(view.locator("table.turns")).to_contain_text("+14155550161")
    screenshot(view, "conversations")


def test_whatsapp_service_list_picker_opens_and_picks(page: Page) -> None:
    phone = add_phone(page, "whatsapp", "+14155550163")
    say(phone, "i want to book")

    offer = phone.locator(".msg-bot").last
    expect(offer.locator(".template")).to_contain_text("Template list_picker_4")
    # Four services are a list behind its button, as WhatsApp shows more than three options.
    offer.locator(".list-picker summary").click()
    offer.get_by_role("button", name="Whitening").click()

    picked = phone.locator(".msg-user").last
    expect(picked).to_contain_text("Picked from a list")
    expect(picked).to_contain_text("Whitening")
    expect(phone.locator(".msg-bot").last).to_contain_text("What day would you like to come in for your whitening?")


def test_content_template_renders_and_its_buttons_press(page: Page, dev_server: DevServer) -> None:
    user = "+14155550162"
    phone = add_phone(page, "whatsapp", user)
    sent = dev_server.rest_client().messages.create(
        from_=f"whatsapp:{BOT}",
        to=f"whatsapp:{user}",
        content_sid=REMINDER.sid,
        content_variables=json.dumps({"1": "Ana", "2": "Tue 3 PM"}),
    )
    message = phone.locator(f'.msg-bot[data-sid="{sent.sid}"]')
    expect(message).to_contain_text("Hi Ana, your cleaning is on Tue 3 PM. Still good?")
    expect(message.locator(".template summary")).to_have_text("Template dev_reminder · 2 variables")
    message.get_by_role("button", name="Confirm").click()
    expect(phone.locator(".msg-user").last).to_contain_text("Confirm")

    inbound = [m for m in dev_server.snapshot("whatsapp", user)["messages"] if m["origin"] == "user"]
    assert inbound[-1]["buttons"] == [{"payload": "confirm", "title": "Confirm"}]  # sent as ButtonPayload
    assert inbound[-1]["replied_to_sid"] == sent.sid


def test_stop_shows_twilios_confirmation_and_blocks_sending(page: Page, dev_server: DevServer) -> None:
    user = "+14155550163"
    phone = add_phone(page, "sms", user)
    say(phone, "hi")
    expect(phone.locator(".msg-bot")).to_have_count(1)
    say(phone, "STOP")

    expect(phone.locator(".msg-twilio")).to_contain_text("You have successfully been unsubscribed")
    expect(phone.locator(".badge-optout")).to_be_visible()
    expect(phone.locator(".optout-note")).to_contain_text("21610")

    # Whatever the bot tries now is refused by Twilio, and the phone shows it.
    with pytest.raises(TwilioRestException) as refused:
        dev_server.rest_client().messages.create(to=user, from_=BOT, body="Reminder: your cleaning tomorrow")
    assert refused.value.code == 21610
    blocked = phone.locator(".msg-rejected")
    expect(blocked).to_contain_text("Blocked by Twilio")
    expect(blocked).to_contain_text("Error 21610: Attempt to send to unsubscribed recipient")
    screenshot(page, "stop")

    say(phone, "hello?")  # the bot hears it but stays silent
    expect(phone.locator(".msg-user").last.locator(".webhook")).to_contain_text("bot answered 200")
    expect(phone.locator(".msg-bot")).to_have_count(1)

    say(phone, "START")
    expect(phone.locator(".msg-twilio").last).to_contain_text("re-subscribed")
    expect(phone.locator(".badge-optout")).to_be_hidden()


def test_injected_30003_shows_as_failed_in_the_phone_and_the_bots_records(page: Page) -> None:
    phone = add_phone(page, "whatsapp", "+14155550164")
    phone.get_by_text("Delivery failures").click()
    phone.get_by_label("Error code").select_option("30003")
    phone.get_by_role("button", name="Fail next messages").click()
    expect(phone.locator(".failure-state")).to_have_text("· failing with 30003")

    # The offer goes out through the bot's REST sender, with a status callback.
    say(phone, "book a cleaning tomorrow at 10am")
    failed = phone.locator(".msg-bot").last
    expect(failed.locator(".status")).to_have_text(re.compile("Undelivered"))
    expect(failed.locator(".msg-error")).to_have_text("Error 30003: Unreachable destination handset")
    expect(failed.locator(".callbacks")).to_contain_text("undelivered → 204")
    expect(failed.locator(".callbacks")).to_contain_text("bot recorded: undelivered")
    screenshot(page, "failure")

    phone.get_by_role("button", name="Deliver normally").click()
    expect(phone.locator(".failure-state")).to_have_text("")
    say(phone, "yes")
    expect(phone.locator(".msg-bot").last.locator(".status")).to_have_text(re.compile("Read"))


def test_whatsapp_location_and_image(page: Page, dev_server: DevServer) -> None:
    user = "+14155550165"
    phone = add_phone(page, "whatsapp", user)
    phone.get_by_role("button", name="Share location").click()
    expect(phone.locator(".msg-user").last).to_contain_text("Location: Bright Smile Dental")
    expect(phone.locator(".msg-bot")).to_have_count(1)

    phone.get_by_label("Image").select_option("tooth")
    phone.get_by_role("button", name="Send image").click()
    image = phone.locator(".msg-user img.media").last
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(phone.locator(".msg-bot")).to_have_count(2)

    (location, photo) = [m for m in dev_server.snapshot("whatsapp", user)["messages"] if m["origin"] == "user"]
    assert location["location"]["label"] == "Bright Smile Dental"
    assert photo["media"] == [{"url": f"{dev_server.url}/dev/static/samples/tooth.png", "content_type": "image/png"}]


def test_phone_rejects_a_malformed_number(page: Page) -> None:
    form = page.locator("#add-phone")
    form.get_by_label("Your number").select_option("custom")
    form.get_by_label("Custom number (E.164)").fill("0415 555 0100")
    form.get_by_role("button", name="Add phone").click()
    expect(page.locator("#add-error")).to_contain_text("E.164")
    expect(page.locator(".phone")).to_have_count(2)


def test_call_mode_books_a_checkup_by_voice_and_keypad(page: Page) -> None:
    call = page.get_by_role("region", name="Call the bot")
    call.get_by_role("textbox", name="Caller number").fill("+14155550178")
    call.get_by_role("button", name="Call", exact=True).click()
    log = call.get_by_role("log", name="Call")
    expect(log.locator(".msg-bot").first).to_contain_text("This is Bright Smile Dental")
    expect(call.get_by_role("status")).to_have_text("In call: the bot is listening")

    call.get_by_role("textbox", name="Say").fill("I'd like to book a checkup on Thursday at 2pm")
    call.get_by_role("button", name="Say", exact=True).click()
    expect(log.locator(".msg-bot").last).to_have_text(
        "Book a checkup on Thursday, March 5 at 2 PM? Say yes or press 1. Say no or press 2."
    )
    call.get_by_role("group", name="Keypad").get_by_role("button", name="1", exact=True).click()
    expect(log.locator(".msg-user").last).to_have_text("Pressed 1")
    expect(log.locator(".msg-bot").last).to_contain_text("You're booked for a checkup on Thursday, March 5 at 2 PM")

    call.get_by_role("button", name="Hang up").click()
    expect(call.get_by_role("status")).to_have_text(re.compile(r"^Call ended \(completed, \d+ s\)$"))
    expect(call.get_by_role("textbox", name="Say")).to_be_disabled()
    screenshot(page, "call")

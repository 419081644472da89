"""The dev phone's Staff inbox and Codes panels in a real browser (headless Debian Chromium).

A developer hands a conversation to staff and sees the email staff got; asks
for reminders on another phone, reads the code in the Codes panel and types
it into the phone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.clock import FrozenClock
from bot.settings import load_settings
from bot.storage import MemoryStore
from devtools.devserver import create_dev_app
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN
from tests.devtools.simulator import test_devphone_browser as devphone
from tests.devtools.simulator.test_devphone_browser import ASYNC_SDK_WARNING, add_phone, say, screenshot
from tests.support.redis_server import free_port
from tests.support.servers import run_app

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings(ASYNC_SDK_WARNING)]
# The same module-scoped headless Chromium fixture as the dev phone's browser tests.
browser = devphone.browser


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    settings = load_settings(twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, environment="test",
                             allow_test_environment=True, redis_url="")
    port = free_port()
    app = create_dev_app(settings, base_url=f"http://127.0.0.1:{port}", store=MemoryStore(),
                         clock=FrozenClock(datetime(2026, 3, 2, 14, 0, tzinfo=UTC)), step_delay=0.05)
    with run_app(app, port=port) as base:
        yield base


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.goto(f"{url}/dev/")
    expect(page.locator("#live")).to_have_attribute("data-state", "live")
    yield page
    context.close()
    assert problems == []


def test_the_staff_inbox_shows_the_hand_off_email(page: Page) -> None:
    phone = add_phone(page, "sms", "+14155550170")
    say(phone, "can i talk to a real person pls")
    inbox = page.get_by_role("region", name=re.compile("Staff inbox"))
    expect(inbox.locator(".subject").first).to_contain_text("needs a person", timeout=10_000)
    expect(inbox.locator(".body").first).to_contain_text("can i talk to a real person pls")
    expect(inbox.locator(".body").first).not_to_contain_text("+14155550170")  # masked
    expect(page.locator("#staff-inbox-count")).to_have_text("(1)")
    screenshot(page, "staff-inbox")


def test_a_code_from_the_codes_panel_verifies_a_reminder_contact(page: Page) -> None:
    phone = add_phone(page, "sms", "+14155550171")
    say(phone, "send my reminders to 415-555-0188 too pls")
    expect(phone.locator(".msg-bot").last).to_contain_text("sent a 6-digit code")
    codes = page.get_by_role("region", name="Codes")
    code_line = codes.locator(".subject").first
    expect(code_line).to_have_text(re.compile(r"^\d{6}$"), timeout=10_000)
    expect(codes.locator(".meta").first).to_contain_text("+14155550188")
    say(phone, f"the code is {code_line.inner_text()}")
    expect(phone.locator(".msg-bot").last).to_contain_text("verified")

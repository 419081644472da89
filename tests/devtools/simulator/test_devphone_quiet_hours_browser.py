"""Quiet hours in the dev phone (issue 20), in a real browser (headless Debian Chromium).

At 22:30 in New York a broadcast goes to three phones: the two Californian
ones (19:30 there) get it at once; the New York one shows it *held until
08:00*, and moving the Clock panel's time to 08:00 sends it (delivered).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from bot.clock import FrozenClock
from tests.devtools.simulator import test_devphone_browser as devphone
from tests.devtools.simulator.test_devphone_browser import (
    ASYNC_SDK_WARNING,
    add_phone,
    open_dev_phone,
    screenshot,
    serve_dev_app,
)

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings(ASYNC_SDK_WARNING)]
browser = devphone.browser
patient_expect = devphone.patient_expect

NEW_YORK = ZoneInfo("America/New_York")
NEW_YORKER = "+12125550190"


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    # Monday 2 March 2026, half past ten at night in New York.
    with serve_dev_app(FrozenClock(datetime(2026, 3, 2, 22, 30, tzinfo=NEW_YORK))) as server:
        yield server.url


@pytest.fixture
def page(browser: Browser, url: str) -> Iterator[Page]:
    with open_dev_phone(browser, url) as page:
        yield page


def test_a_broadcast_at_night_is_held_until_eight_and_the_clock_releases_it(page: Page) -> None:
    new_yorker = add_phone(page, "sms", NEW_YORKER)
    californian = page.get_by_role("region", name="SMS phone +14155550100")
    panel = page.get_by_role("region", name="Clock")
    expect(panel.locator("#clock-now")).to_have_text("Mon Mar 2, 22:30 America/New_York")

    panel.get_by_label("Template").select_option("welcome_back")
    panel.get_by_label("Variables (JSON)").fill('{"name": "Ana"}')
    panel.get_by_role("button", name="Broadcast to these phones").click()
    expect(panel.locator("#clock-result")).to_contain_text("1 held until 08:00 America/New_York (Tue Mar 3)")

    # 19:30 in California: sent now. 22:30 in New York: held, with its release time.
    expect(californian.locator(".msg-bot").last).to_contain_text("Ana")
    held = new_yorker.get_by_role("list", name="Held for quiet hours").get_by_role("listitem")
    expect(held).to_have_count(1)
    expect(held).to_contain_text("held until 08:00 America/New_York (Tue Mar 3)")
    expect(held).to_contain_text("[template welcome_back]")
    expect(new_yorker.locator(".msg-bot")).to_have_count(0)
    screenshot(page, "held")

    panel.get_by_label("Advance by").fill("9h")  # 07:30: still quiet
    panel.get_by_role("button", name="Advance").click()
    expect(panel.locator("#clock-now")).to_have_text("Tue Mar 3, 07:30 America/New_York")
    expect(panel.locator("#clock-result")).to_contain_text("0 held messages released")
    expect(held).to_have_count(1)
    expect(new_yorker.locator(".msg-bot")).to_have_count(0)

    panel.get_by_label("Advance by").fill("30m")  # 08:00: it goes
    panel.get_by_role("button", name="Advance").click()
    expect(panel.locator("#clock-result")).to_contain_text("1 held message released")
    sent = new_yorker.locator(".msg-bot")
    expect(sent).to_have_count(1)
    expect(sent.last).to_contain_text("Ana")
    expect(sent.last.locator(".status")).to_have_text(re.compile("Delivered"))
    expect(held).to_have_count(0)
    screenshot(page, "released")

"""The dev phone's rough edges from issue 18, in a real browser (headless Debian Chromium):

- the thread stays at the newest message after a picture loads, and follows
  again once the reader scrolls back down;
- a hand-off says why the bot went quiet (*With staff*) and shows what staff got;
- the conversation view lists the options each phone showed: numbered lines on
  SMS, quick-reply buttons on WhatsApp.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.devtools.simulator import test_devphone_browser as devphone
from tests.devtools.simulator.test_devphone_browser import ASYNC_SDK_WARNING, add_phone, say, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings(ASYNC_SDK_WARNING)]
# The dev phone tests' headless Chromium and dev server (a server of this module's own).
browser = devphone.browser
patient_expect = devphone.patient_expect
dev_server = devphone.dev_server
page = devphone.page

AT_BOTTOM = "el => el.scrollHeight - el.scrollTop - el.clientHeight < 2"


def wait_at_bottom(page: Page, thread: Locator) -> None:
    """Polls until the thread shows its last pixel (fails after Playwright's timeout)."""
    page.wait_for_function(AT_BOTTOM, arg=thread.element_handle())


def at_bottom(thread: Locator) -> bool:
    return bool(thread.evaluate(AT_BOTTOM))


def test_the_thread_stays_at_the_newest_message_after_a_picture_loads(page: Page) -> None:
    phone = add_phone(page, "whatsapp", "+14155550180")
    thread = phone.locator(".thread")
    for n in range(1, 5):
        say(phone, f"hi {n}")
        expect(phone.locator(".msg-bot")).to_have_count(n)
    page.wait_for_function("el => el.scrollHeight > el.clientHeight + 100", arg=thread.element_handle())

    # The picture arrives late, as over a slow network: after the bot's answer was drawn.
    pictures: list[Route] = []
    page.route("**/samples/sunset.png", lambda route: pictures.append(route))
    phone.get_by_label("Image").select_option("sunset")
    phone.get_by_role("button", name="Send image").click()
    expect(phone.locator(".msg-bot")).to_have_count(5)
    expect(phone.locator(".msg-bot").last.locator(".status")).to_have_text(re.compile("Read"))
    assert pictures  # the page asked for it and is waiting
    for picture in pictures:
        picture.continue_()
    image = phone.locator(".msg-user img.media").last
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    wait_at_bottom(page, thread)  # the picture grew the thread after it was scrolled to
    expect(image).to_be_in_viewport()

    say(phone, "thanks")  # and it keeps following
    expect(phone.locator(".msg-bot")).to_have_count(6)
    wait_at_bottom(page, thread)

    # A reader who scrolls up to read is left there ...
    thread.evaluate("el => { el.scrollTop = 0; }")
    page.wait_for_function("el => el.scrollTop === 0", arg=thread.element_handle())
    say(phone, "one more")
    expect(phone.locator(".msg-bot")).to_have_count(7)
    assert not at_bottom(thread)
    # ... and followed again once back at the bottom.
    thread.evaluate("el => { el.scrollTop = el.scrollHeight; }")
    say(phone, "and another")
    expect(phone.locator(".msg-bot")).to_have_count(8)
    wait_at_bottom(page, thread)
    screenshot(page, "scrolled")


def test_a_hand_off_says_the_bot_is_with_staff_and_shows_what_staff_got(page: Page) -> None:
    phone = add_phone(page, "sms", "+14155550181")
    expect(phone.locator(".badge-staff")).to_be_hidden()
    say(phone, "can i talk to a real person pls")
    expect(phone.locator(".msg-bot")).to_have_count(1)

    expect(phone.locator(".badge-staff")).to_have_text("With staff")
    expect(phone.locator(".badge-staff")).to_be_visible()
    note = phone.locator(".staff-note")
    expect(note).to_contain_text(re.compile(r"With staff until \d\d:\d\d"))
    expect(note).to_contain_text('text "bot"')

    # What staff received: the email in the Staff inbox ...
    note.get_by_role("link", name=re.compile("See what staff received")).click()
    inbox = page.get_by_role("region", name=re.compile("Staff inbox"))
    expect(inbox).to_be_in_viewport()
    expect(inbox.locator(".body").first).to_contain_text("can i talk to a real person pls", timeout=10_000)
    # ... and the SMS notice on the staff phone.
    note.get_by_role("button", name="Open the staff phone").click()
    staff = page.get_by_role("region", name=re.compile(r"SMS phone \+1"))
    staff = staff.filter(has_not=page.get_by_text("+14155550181", exact=True))
    expect(staff.locator(".msg-bot").last).to_contain_text("+1", timeout=10_000)
    screenshot(page, "with-staff")

    say(phone, "hello??")  # the bot stays quiet, and the page says why
    expect(phone.locator(".msg-user")).to_have_count(2)
    expect(phone.locator(".msg-user").last.locator(".webhook")).to_contain_text("bot answered 200")
    expect(phone.locator(".badge-staff")).to_be_visible()

    say(phone, "bot")  # taking the conversation back
    expect(phone.locator(".badge-staff")).to_be_hidden()
    expect(phone.locator(".staff-note")).to_be_hidden()


def test_the_conversation_view_lists_the_options_each_phone_showed(page: Page) -> None:
    sms = add_phone(page, "sms", "+14155550183")
    say(sms, "book a cleaning tomorrow at 3pm")
    expect(sms.locator(".msg-bot").last).to_contain_text("2. No")
    whatsapp = add_phone(page, "whatsapp", "+14155550184")
    say(whatsapp, "book a cleaning tomorrow at 3pm")
    expect(whatsapp.locator(".msg-bot").last.get_by_role("button", name="No")).to_be_visible()

    with page.context.expect_page() as opened:
        sms.get_by_role("link", name=re.compile("Turns of SMS phone")).click()
    view = opened.value
    options = view.get_by_role("list", name="Options the user saw (numbered lines)")
    expect(options.get_by_role("listitem")).to_have_text(["1. Yes", "2. No"])
    screenshot(view, "conversation-sms-options")

    view.goto(re.sub(r"/sms/(.*)/%2B14155550183$", r"/whatsapp/\1/%2B14155550184", view.url))
    buttons = view.get_by_role("list", name="Quick-reply buttons the user saw")
    expect(buttons.get_by_role("listitem")).to_have_text(["Yes", "No"])
    expect(view.locator(".seen-options")).to_contain_text("template quick_reply_2")
    expect(view.get_by_role("list", name="Options the user saw (numbered lines)")).to_have_count(0)
    screenshot(view, "conversation-whatsapp-options")

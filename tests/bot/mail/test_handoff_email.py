"""Staff email end to end: a patient texts the dev app (the bot, the local Twilio,
SendGrid and Verify on one real server) and staff get the email through the
official SendGrid library.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.messages import Channel
from bot.observability import mask_phone
from bot.settings import Settings
from bot.storage import RedisStore
from devtools.devserver import create_dev_app
from devtools.simulator.sendgrid import LocalSendGrid, ReceivedEmail
from devtools.webhook_client import WebhookClient, inbound_form, new_sid
from tests.conftest import AUTH_TOKEN
from tests.support.redis_server import free_port
from tests.support.servers import run_app

BOT = "+15005550006"
USER = "+14155550123"


@pytest.fixture
def dev(make_settings: Callable[..., Settings], redis_url: str, redis_client: object
        ) -> Iterator[tuple[FastAPI, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_dev_app(make_settings(staff_email="front@clinic.test, dr@clinic.test"), base_url=base,
                         bot_number=BOT, store=RedisStore.from_url(redis_url), step_delay=0)
    with run_app(app, port=port) as url:
        yield app, url


def emails(app: FastAPI, count: int, timeout: float = 10.0) -> list[ReceivedEmail]:
    sendgrid: LocalSendGrid = app.state.sendgrid
    deadline = time.monotonic() + timeout
    while len(sendgrid.emails) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return list(sendgrid.emails)


async def text(url: str, body: str, *, sid: str | None = None, channel: Channel = Channel.SMS,
               **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as http:
        client = WebhookClient(http, auth_token=AUTH_TOKEN, public_base_url=url)
        form = inbound_form(channel, USER, BOT, body, message_sid=sid or new_sid(), **kw)
        response = await client.post("/twilio/messages", form)
    assert response.status_code == 200
    return response


async def test_a_hand_off_emails_staff_the_conversation_masked(dev: tuple[FastAPI, str]) -> None:
    app, url = dev
    wa = Channel.WHATSAPP
    await text(url, "hi, do u do cleanings?", channel=wa, profile_name="Ana <b>Ruiz</b>")
    sid = new_sid()
    await text(url, "can i talk to a real person pls, my other # is 415-555-0111", sid=sid, channel=wa,
               profile_name="Ana <b>Ruiz</b>")
    [email] = emails(app, 1)
    assert email.to == ("front@clinic.test", "dr@clinic.test")
    assert "needs a person" in email.subject and "Ana" in email.subject
    assert "by WhatsApp" in email.text
    body = email.text
    assert mask_phone(USER) in body and USER not in body
    assert "415-555-0111" not in body and "[number]" in body  # numbers inside messages are masked
    assert "hi, do u do cleanings?" in body  # the last turns, in order
    assert "the patient asked for a person" in body
    assert "How to answer" in body
    # HTML is escaped: a profile name is data, never markup.
    assert "<b>Ruiz</b>" not in email.html and "&lt;b&gt;Ruiz&lt;/b&gt;" in email.html
    # Twilio retries the same message: the turn does not run again, and staff get no second email.
    await text(url, "can i talk to a real person pls, my other # is 415-555-0111", sid=sid, channel=wa,
               profile_name="Ana <b>Ruiz</b>")
    await asyncio.sleep(0.5)
    assert len(emails(app, 1)) == 1


async def test_upcoming_appointments_are_in_the_email(dev: tuple[FastAPI, str]) -> None:
    app, url = dev
    await text(url, "book a cleaning next tuesday at 10am")
    await text(url, "yes")
    await text(url, "actually i need to speak to someone")
    [email] = emails(app, 1)
    assert "Upcoming appointments" in email.text
    assert "Cleaning" in email.text and "10:00 AM" in email.text


async def test_without_staff_email_settings_nothing_is_sent(
    make_settings: Callable[..., Settings], redis_store: RedisStore
) -> None:
    from webhooks.app import create_app

    app = create_app(make_settings(), store=redis_store)
    assert app.state.services.staff_mail is None


async def test_an_emergency_sends_an_urgent_email(dev: tuple[FastAPI, str]) -> None:
    app, url = dev
    await text(url, "my tooth is bleeding a lot and my face is swelling up")
    [email] = emails(app, 1)
    assert email.subject.startswith("URGENT: ")
    assert "possible dental emergency" in email.text
    assert "my tooth is bleeding a lot" in email.text


async def test_a_complaint_is_emailed_as_one(dev: tuple[FastAPI, str]) -> None:
    app, url = dev
    await text(url, "this is ridiculous, i've been waiting 40 min and nobody told me anything. terrible service")
    [email] = emails(app, 1)
    assert not email.subject.startswith("URGENT")
    assert "complaint" in email.text


async def test_an_opt_out_with_an_appointment_emails_staff_without_the_words(dev: tuple[FastAPI, str]) -> None:
    app, url = dev
    await text(url, "book a cleaning next tuesday at 10am")
    await text(url, "yes")
    await text(url, "pls stop texting me")
    [email] = emails(app, 1)
    assert "can no longer be texted" in email.subject
    assert "Cleaning" in email.text and mask_phone(USER) in email.text
    assert "stop texting" not in email.text and "stop texting" not in email.html


async def test_an_opt_out_without_an_appointment_sends_no_email(dev: tuple[FastAPI, str]) -> None:
    app, url = dev
    await text(url, "hi")
    await text(url, "STOP")
    await asyncio.sleep(0.5)
    assert emails(app, 0, timeout=0.5) == []


async def test_bookings_and_cancellations_are_counted_for_the_digest(
    dev: tuple[FastAPI, str], redis_store: RedisStore
) -> None:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from bot.mail.activity import ActivityLog
    from bot.storage.stores import Stores

    _, url = dev
    await text(url, "book a cleaning next tuesday at 10am")
    await text(url, "yes")
    await text(url, "actually cancel it")
    await text(url, "yes")
    tz = ZoneInfo("America/New_York")
    activity = ActivityLog(Stores.beside(redis_store).ledger, tz=tz)
    entries = await activity.entries(datetime.now(tz).date())
    kinds = [e["kind"] for e in entries]
    assert kinds == ["booked", "cancelled"]
    assert all("Cleaning" in e["text"] and mask_phone(USER) in e["text"] for e in entries)

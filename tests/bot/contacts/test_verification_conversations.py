"""Reminder contacts verified with Twilio Verify, as patients text it.

The dev app runs for real (the bot, the local Twilio incl. Verify, on one
server); the bot reaches Verify through the official SDK; the codes are read
from the local Verify, as a developer reads them in the dev phone's *Codes* panel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bot.clock import FrozenClock
from bot.contacts.store import ContactBook
from bot.messages import Channel
from bot.settings import Settings
from bot.storage import ConversationKey, RedisStore
from bot.storage.stores import Stores
from devtools.devserver import create_dev_app
from devtools.simulator.verify import LocalVerify
from devtools.webhook_client import WebhookClient, inbound_form, parse_twiml
from tests.conftest import AUTH_TOKEN
from tests.support.redis_server import free_port
from tests.support.servers import run_app

BOT = "+15005550006"
PATIENT = "+14155550123"
HUSBAND = "+14155550199"


class Phone:
    def __init__(self, url: str, clock: FrozenClock, verify: LocalVerify) -> None:
        self.url, self.clock, self.verify = url, clock, verify

    async def text(self, body: str, *, user: str = PATIENT, channel: Channel = Channel.SMS) -> str:
        async with httpx.AsyncClient(base_url=self.url) as http:
            client = WebhookClient(http, auth_token=AUTH_TOKEN, public_base_url=self.url)
            response = await client.post("/twilio/messages", inbound_form(channel, user, BOT, body))
        assert response.status_code == 200
        self.clock.advance(timedelta(seconds=30))
        return " ".join(body for body, _ in parse_twiml(response.text))

    @property
    def code(self) -> str:
        return self.verify.sent[-1].code


@pytest.fixture
def dev(make_settings: Callable[..., Settings], redis_url: str, redis_store: RedisStore
        ) -> Iterator[tuple[Phone, RedisStore]]:
    """The dev app on its own server thread (its own Redis client); the test reads Redis with ``redis_store``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    clock = FrozenClock(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))
    app: FastAPI = create_dev_app(make_settings(sms_keyword_replies="bot"), base_url=base, bot_number=BOT,
                                  store=RedisStore.from_url(redis_url), clock=clock, step_delay=0)
    with run_app(app, port=port) as url:
        yield Phone(url, clock, app.state.verify), redis_store


def wrong(code: str) -> str:
    return "000000" if code != "000000" else "111111"


async def contacts(store: Any) -> list[str]:
    book = ContactBook(Stores.beside(store).ledger)
    return [c.number for c in await book.for_patient(ConversationKey(Channel.SMS, BOT, PATIENT))]


async def test_full_verification_with_the_right_code(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    assert "What number" in await phone.text("can u send my reminders to my husbands phone?")
    reply = await phone.text("its 415 555 0199")
    assert "code" in reply and "+141******99" in reply and HUSBAND not in reply
    assert phone.verify.sent[-1].to == HUSBAND and phone.verify.sent[-1].channel == "sms"
    reply = await phone.text(f"the code is {phone.code}")
    assert "verified" in reply and "as well" in reply
    assert await contacts(store) == [HUSBAND]


async def test_a_number_in_the_request_and_instead(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    reply = await phone.text("use this number from now on for reminders: (415) 555-0199")
    assert "sent a 6-digit code" in reply
    reply = await phone.text(phone.code)
    assert "instead of this number" in reply
    [contact] = await ContactBook(Stores.beside(store).ledger).for_patient(ConversationKey(Channel.SMS, BOT, PATIENT))
    assert contact.mode == "instead"


async def test_wrong_code_then_right(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    reply = await phone.text(wrong(phone.code))
    assert "isn't right" in reply and "2 tries left" in reply
    assert await contacts(store) == []
    assert "verified" in await phone.text(f"ok its {phone.code}")
    assert await contacts(store) == [HUSBAND]


async def test_the_code_typed_on_the_new_phone_works(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    reply = await phone.text(phone.code, user=HUSBAND)
    assert "verified" in reply
    assert await contacts(store) == [HUSBAND]
    # The patient's next message is an ordinary one again.
    assert "verified" not in await phone.text("what are your hours")


async def test_an_expired_code_changes_nothing(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    code = phone.code
    phone.clock.advance(timedelta(minutes=10))
    reply = await phone.text(f"code {code}")
    assert "expired" in reply and "nothing changed" in reply
    assert await contacts(store) == []


async def test_too_many_attempts_stops_with_nothing_changed(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    code = phone.code
    await phone.text(wrong(code))
    await phone.text(wrong(code))
    reply = await phone.text(wrong(code))
    assert "Too many wrong codes" in reply and "Nothing changed" in reply
    # The right code after that is just a number to the bot: nothing is added.
    await phone.text(code)
    assert await contacts(store) == []


async def test_never_mind_stops_it(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    assert "Nothing changed" in await phone.text("never mind")
    await phone.text(phone.code)
    assert await contacts(store) == []


async def test_on_whatsapp_the_code_goes_by_whatsapp(dev: tuple[Phone, RedisStore]) -> None:
    phone, _ = dev
    await phone.text("hi", channel=Channel.WHATSAPP)
    reply = await phone.text("pls send reminders to my wife's number +1 415 555 0199", channel=Channel.WHATSAPP)
    assert "code" in reply
    assert phone.verify.sent[-1].channel == "whatsapp"


async def test_another_number_while_waiting_for_the_code_restarts_with_it(dev: tuple[Phone, RedisStore]) -> None:
    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    reply = await phone.text("oops no wait, use 415 555 0188")
    assert "+141******88" in reply
    assert phone.verify.sent[-1].to == "+14155550188"
    assert "verified" in await phone.text(phone.code)
    assert await contacts(store) == ["+14155550188"]


async def test_the_contact_is_in_the_consent_ledger_and_its_own_stop_removes_it(
    dev: tuple[Phone, RedisStore],
) -> None:
    from bot.compliance.ledger import AddressHasher, build_consent_ledger

    phone, store = dev
    await phone.text("send my reminders to 415-555-0199 too pls")
    await phone.text(phone.code)
    history = await build_consent_ledger(store).history(AddressHasher().hash(HUSBAND))
    assert [(e.action, e.source) for e in history] == [("opt_in", "verified")]
    assert await contacts(store) == [HUSBAND]
    await phone.text("STOP", user=HUSBAND)
    assert await contacts(store) == []

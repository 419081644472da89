"""List-picker content through the official twilio client: create, approve, send, pick.

The simulator's Content API (``/v1/Content``) is driven by the SDK exactly
as against content.twilio.com; the content is then sent in session with
``ContentSid`` and the user's pick reaches the webhook as ``ListId`` /
``ListTitle`` (a quick reply's tap stays ``ButtonPayload``/``ButtonText``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList
from twilio.rest.content.v1.content.approval_create import ApprovalCreateList

from bot.clock import FrozenClock
from bot.messages import Channel, Choice
from devtools.simulator import Simulator, SimulatorConfig, create_simulator_app, send_inbound
from tests.devtools.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT, USER, FakeBot, serve_in_loop
from tests.devtools.simulator.test_sdk import ASYNC_SDK_WARNING

pytestmark = pytest.mark.filterwarnings(ASYNC_SDK_WARNING)

SERVICES = [("service:cleaning", "Cleaning", "60 min, $120"), ("service:checkup", "Checkup", "30 min"),
            ("service:whitening", "Whitening", ""), ("service:filling", "Filling", "")]


@asynccontextmanager
async def clients(sim: Simulator) -> AsyncIterator[tuple[Client, Client]]:
    """(sync client for the Content API, async client for Messages), both at the simulator.

    twilio 9.13's async HTTP client sends JSON bodies as a form, so the
    Content API (JSON) is called with the sync client, in a thread.
    """
    async with serve_in_loop(create_simulator_app(sim, close_on_shutdown=False)) as base_url:
        content = Client(ACCOUNT_SID, AUTH_TOKEN)
        content.content.base_url = base_url
        http = AsyncTwilioHttpClient()
        messages = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        messages.api.base_url = base_url
        try:
            yield content, messages
        finally:
            await http.close()


def approve(client: Client, sid: str) -> Any:
    return client.content.v1.contents(sid).approval_create.create(
        ApprovalCreateList.ContentApprovalRequest({"name": "services_list", "category": "UTILITY"})
    )


def list_picker(items: list[tuple[str, str, str]], *, button: str = "Choose one") -> ContentList.ContentCreateRequest:
    return ContentList.ContentCreateRequest({
        "friendly_name": "services_list",
        "language": "en",
        "types": {"twilio/list-picker": ContentList.TwilioListPicker({
            "body": "Which service would you like?",
            "button": button,
            "items": [ContentList.ListItem({"id": i, "item": t, "description": d}) for i, t, d in items],
        })},
    })


async def test_list_picker_is_created_approved_sent_and_picked(sim: Simulator, fake_bot: FakeBot) -> None:
    wa_user, wa_bot = Channel.WHATSAPP.address(USER), Channel.WHATSAPP.address(BOT)
    async with clients(sim) as (api, client):
        content = await asyncio.to_thread(api.content.v1.contents.create, list_picker(SERVICES))
        assert content.sid.startswith("HX") and "twilio/list-picker" in content.types
        listed = await asyncio.to_thread(api.content.v1.content_and_approvals.list)
        assert [c.approval_requests for c in listed if c.sid == content.sid] == [{}]  # not submitted yet

        approval = await asyncio.to_thread(approve, api, content.sid)
        assert approval.status == "received"
        listed = await asyncio.to_thread(api.content.v1.content_and_approvals.list)
        assert [c.approval_requests["status"] for c in listed if c.sid == content.sid] == ["approved"]

        # In session (the user wrote first), the list goes out with its items.
        await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, body="hi, can i book?")
        sent = await client.messages.create_async(to=wa_user, from_=wa_bot, content_sid=content.sid)
        stored = sim.get_message(sent.sid)
        assert stored is not None and stored.list_button == "Choose one"
        assert [b.title for b in stored.buttons] == ["Cleaning", "Checkup", "Whitening", "Filling"]

        # Picking "Whitening" reaches the webhook as a list answer, not a button press.
        await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP,
                           button=Choice("service:whitening", "Whitening"))
        form = fake_bot.received[-1].form
        assert (form["ListId"], form["ListTitle"], form["Body"]) == ("service:whitening", "Whitening", "Whitening")
        assert form["OriginalRepliedMessageSid"] == sent.sid and form["MessageType"] == "interactive"
        assert "ButtonPayload" not in form and fake_bot.received[-1].valid
        await sim.drain()


async def test_list_picker_limits_and_window(make_sim: Callable[..., Simulator], clock: FrozenClock) -> None:
    sim = make_sim(config=SimulatorConfig(step_delay=0, window_errors="reject"))
    wa_user, wa_bot = Channel.WHATSAPP.address(USER), Channel.WHATSAPP.address(BOT)
    try:
        async with clients(sim) as (api, client):
            eleven = [(f"id{n}", f"Item {n}", "") for n in range(11)]
            for bad in (list_picker(eleven), list_picker([("x", "A title far longer than WhatsApp shows", "")]),
                        list_picker(SERVICES, button="A button label that is too long")):
                with pytest.raises(TwilioRestException) as info:
                    await asyncio.to_thread(api.content.v1.contents.create, bad)
                assert info.value.status == 400
            content = await asyncio.to_thread(api.content.v1.contents.create, list_picker(SERVICES))
            await asyncio.to_thread(approve, api, content.sid)
            fetched = await asyncio.to_thread(api.content.v1.contents(content.sid).approval_fetch().fetch)
            assert fetched.whatsapp["status"] == "approved"
            # Approved or not, a list picker is in-session only: a day later it cannot start a conversation.
            await send_inbound(sim, user=USER, bot=BOT, channel=Channel.WHATSAPP, body="hi")
            clock.advance(timedelta(hours=25))
            with pytest.raises(TwilioRestException) as info:
                await client.messages.create_async(to=wa_user, from_=wa_bot, content_sid=content.sid)
            assert info.value.code == 63016
            assert fetched.whatsapp["content_type"] == "twilio/list-picker"
    finally:
        await sim.aclose()
        await sim.http.aclose()

"""Content templates whose buttons hold variables: the simulator fills them in once.

The generic quick replies of ``intents/templates.yaml`` (``quick_reply_2``
...) carry their titles and ids as ``{{n}}`` variables. The simulator
stores the buttons as the user sees them, so its dev-phone JSON, its event
stream and replay all read final titles and ids without substituting again.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bot.clock import FrozenClock
from bot.messages import Channel, Choice
from bot.outbound.templates import ContentTemplates
from devtools.simulator import ContentTemplate, CreateMessageRequest, SimulatorConfig
from devtools.simulator.content import register_content_templates
from devtools.simulator.devphone import DevPhone, DevSimulator
from tests.devtools.simulator.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT, PUBLIC, START, USER

REGISTRY = ContentTemplates.load(Path(__file__).parents[3] / "intents" / "templates.yaml")
QUICK_REPLY = REGISTRY.get("quick_reply_2")
VALUES = {"body": "Book it?", "title_1": "Yes, book", "payload_1": "yes", "title_2": "Not now", "payload_2": "no"}
SHOWN = [{"payload": "yes", "title": "Yes, book"}, {"payload": "no", "title": "Not now"}]


def _no_callbacks(request: httpx.Request) -> httpx.Response:
    return httpx.Response(204)


@pytest.fixture
async def dev_sim() -> AsyncIterator[DevSimulator]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(_no_callbacks))
    sim = DevSimulator(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        clock=FrozenClock(START),
        http_client=http,
        config=SimulatorConfig(step_delay=0),
    )
    register_content_templates(sim, REGISTRY)
    yield sim
    await sim.aclose()
    await http.aclose()


def test_render_buttons_fills_titles_and_ids_and_keeps_unknown_placeholders() -> None:
    template = ContentTemplate(
        sid="HX" + "3" * 32, name="t", body="{{1}}", buttons=(Choice("{{2}}", "Go {{ 2 }}"), Choice("x", "{{9}}"))
    )
    assert template.placeholders == {"1", "2", "9"}  # Twilio counts the buttons' variables too
    assert template.render_buttons({"1": "hi", "2": "now"}) == (Choice("now", "Go now"), Choice("x", "{{9}}"))


async def test_button_variables_are_filled_in_the_stored_message_its_json_and_its_events(
    dev_sim: DevSimulator,
) -> None:
    phone = DevPhone(dev_sim, bot=BOT, base_url=PUBLIC)
    dev_sim.record_inbound_time(Channel.WHATSAPP, user=USER, bot=BOT)
    variables = REGISTRY.content_variables(QUICK_REPLY.name, VALUES)
    with dev_sim.subscribe() as events:
        message = await dev_sim.create_message(
            CreateMessageRequest(
                to=Channel.WHATSAPP.address(USER),
                from_=Channel.WHATSAPP.address(BOT),
                content_sid=QUICK_REPLY.content_sid,
                content_variables=variables,
            )
        )
        await dev_sim.drain()
        seen = events.pending()

    assert message.body == "Book it?"
    assert message.buttons == (Choice("yes", "Yes, book"), Choice("no", "Not now"))
    # The dev phone's API (its thread JSON) ...
    [shown] = phone.snapshot(Channel.WHATSAPP, USER)["messages"]
    assert shown["buttons"] == SHOWN
    # ... and every event frame about the message (created, each status change).
    frames = [json.loads(json.dumps(event.to_dict())) for event in seen if event.message is not None]
    assert len(frames) >= 3
    assert all(frame["message"]["buttons"] == SHOWN for frame in frames)


async def test_on_sms_a_template_has_no_buttons(dev_sim: DevSimulator) -> None:
    message = await dev_sim.create_message(
        CreateMessageRequest(
            to=USER,
            from_=BOT,
            content_sid=QUICK_REPLY.content_sid,
            content_variables=REGISTRY.content_variables(QUICK_REPLY.name, VALUES),
        )
    )
    await dev_sim.drain()
    assert message.buttons == ()

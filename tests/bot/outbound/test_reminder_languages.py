"""A reminder speaks the patient's conversation's language: the real Brain, Redis, the simulated Twilio.

A patient who booked in Spanish gets the Spanish variant of ``appointment_reminder``
(intents/templates.yaml): its SMS fallback on SMS, its own ContentSid on WhatsApp,
with the service's Spanish name and the time as Spanish writes it; "si" confirms
it in Spanish. An English patient's reminder is unchanged.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI

from bot.appointments import AppointmentBook
from bot.clock import FrozenClock
from bot.confirmations.status import Status
from bot.errors import TemplateError
from bot.languages.choose import STATE_KEY
from bot.messages import Channel, InboundMessage, Reply, TemplateMessage, TurnResult
from bot.outbound.ledger import SendRecord
from bot.outbound.models import SendRequest
from bot.outbound.outbox import InlineOutbox
from bot.runtime import Runtime, build_runtime
from bot.storage import ConversationKey, ConversationState, RedisStore
from bot.storage.stores import Stores
from devtools.webhook_client import inbound_form
from tests.bot.outbound.conftest import ROOT, THIRD_PARTY_WARNINGS, Twilio
from tests.conftest import BOT_NUMBER, signed_client

pytestmark = [pytest.mark.filterwarnings(w) for w in THIRD_PARTY_WARNINGS]

ROSA = "+14155550161"
TOM = "+14155550162"


class Patient:
    """One texter of the bot app, through signed webhooks; what the bot answered, TwiML or REST."""

    def __init__(self, app: FastAPI, twilio: Twilio, channel: Channel, user: str, name: str | None = None) -> None:
        self.app, self.twilio, self.channel, self.user, self.name = app, twilio, channel, user, name
        self.client = signed_client(app)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(self.channel, BOT_NUMBER, self.user)

    async def says(self, text: str) -> str:
        form = inbound_form(self.channel, self.user, BOT_NUMBER, text, profile_name=self.name)
        resp = await self.client.post("/twilio/messages", form)
        assert resp.status_code == 200
        background = self.app.state.services.background
        while background:
            await asyncio.wait(set(background))
        await self.twilio.sim.drain()
        return resp.text


async def run_reminders(app: FastAPI, twilio: Twilio) -> None:
    runtime = app.state.services
    await runtime.jobs["reminders"]()
    outbox = runtime.require_outbound().outbox
    assert isinstance(outbox, InlineOutbox)
    await outbox.drain()
    await twilio.sim.drain()


@pytest.fixture
def brain_app(make_app: Callable[..., FastAPI], make_settings: Callable[..., Any]) -> FastAPI:
    # The real Brain (handler=None), one reminder a day ahead.
    return make_app(handler=None, settings=make_settings(outbound_backoff_seconds=0.0, reminder_lead_hours=24.0))


async def book_in(patient: Patient, *messages: str) -> None:
    for text in messages:
        await patient.says(text)


async def test_a_spanish_sms_patient_gets_the_spanish_reminder_and_si_confirms_it(
    brain_app: FastAPI, twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    rosa = Patient(brain_app, twilio, Channel.SMS, ROSA)
    tom = Patient(brain_app, twilio, Channel.SMS, TOM)
    # Monday 4 am in New York: both book for Tuesday, one in Spanish, one in English.
    await book_in(rosa, "hola, quiero una limpieza mañana a las 10", "si")
    await book_in(tom, "can i get a cleaning tomorrow at 11am", "yes")
    book = AppointmentBook(Stores.beside(redis_store).appointments)
    (appt,) = await book.upcoming_for(rosa.key, now=clock.now())
    assert appt.status == Status.BOOKED
    before = len(twilio.sent())

    clock.advance(timedelta(hours=7))
    await run_reminders(brain_app, twilio)
    sent = {m.user: m for m in twilio.sent()[before:]}
    assert set(sent) == {ROSA, TOM}
    assert sent[ROSA].content_sid is None  # SMS: the Spanish variant's text fallback, GSM-7
    assert sent[ROSA].body == ("Hola de nuevo, le recordamos su cita de limpieza en Bright Smile Dental el martes 3 "
                               "de marzo a las 10:00 am. Responda C para confirmar o R para reprogramar.")
    assert sent[TOM].body == ("Hi there, this is a reminder of your cleaning appointment at Bright Smile Dental on "
                              "Tue, Mar 3 at 11:00 AM. Reply C to confirm, R to reschedule.")

    answer = await rosa.says("si")
    assert "Gracias por confirmar" in answer
    assert (await book.get(appt.id)).status == Status.CONFIRMED  # type: ignore[union-attr]


async def test_a_spanish_whatsapp_patient_gets_the_spanish_content_template(
    brain_app: FastAPI, twilio: Twilio, redis_store: RedisStore, clock: FrozenClock
) -> None:
    rosa = Patient(brain_app, twilio, Channel.WHATSAPP, ROSA, name="Rosa")
    tom = Patient(brain_app, twilio, Channel.WHATSAPP, TOM, name="Tom")
    await book_in(rosa, "hola, quiero una limpieza mañana a las 10", "si")
    await book_in(tom, "can i get a cleaning tomorrow at 11am", "yes")
    before = len(twilio.sent())

    clock.advance(timedelta(hours=7))
    await run_reminders(brain_app, twilio)
    sent = {m.user: m for m in twilio.sent()[before:]}
    registry = brain_app.state.services.require_outbound().templates
    spanish, english = registry.get("appointment_reminder", "es"), registry.get("appointment_reminder")
    assert spanish.content_sid != english.content_sid
    assert sent[ROSA].content_sid == spanish.content_sid
    assert dict(sent[ROSA].content_variables) == {"1": "Rosa", "2": "limpieza", "3": "martes 3 de marzo a las 10:00 am"}
    assert sent[ROSA].body.startswith("Hola Rosa, le recordamos su cita de limpieza")  # the simulator knows the SID
    assert sent[TOM].content_sid == english.content_sid
    assert dict(sent[TOM].content_variables) == {"1": "Tom", "2": "cleaning", "3": "Tue, Mar 3 at 11:00 AM"}

    answer = await rosa.says("Sí")
    replies = answer + " ".join(m.body for m in twilio.sent(ROSA)[-1:])
    assert "Gracias por confirmar" in replies
    book = AppointmentBook(Stores.beside(redis_store).appointments)
    (appt,) = await book.upcoming_for(rosa.key, now=clock.now())
    assert appt.status == Status.CONFIRMED


def test_a_business_language_without_the_reminder_s_variant_stops_start_up(
    tmp_path: Path, make_settings: Callable[..., Any], redis_store: RedisStore
) -> None:
    intents = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", intents)
    path = intents / "templates.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    del data["visit_missed"]["es"]
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(TemplateError, match="visit_missed has no 'es' variant"):
        build_runtime(make_settings(intents_dir=str(intents)), store=redis_store)


def test_the_variant_s_language_survives_the_queue() -> None:
    # The worker's outbox (arq) carries a request as JSON: the Spanish reminder stays Spanish.
    spanish = SendRequest(key=ConversationKey(Channel.SMS, BOT_NUMBER, ROSA), idempotency_key="reminder:1:2",
                          template=TemplateMessage("appointment_reminder", {"name": "Rosa"}, "es"), purpose="reminder")
    assert SendRequest.from_dict(spanish.to_dict()) == spanish
    english = replace(spanish, template=TemplateMessage("appointment_reminder", {"name": "Tom"}),
                      fallback_template=TemplateMessage("welcome_back", {"name": "Tom"}, "es"))
    assert "language" not in english.to_dict()["template"]  # as queued before variants existed
    assert SendRequest.from_dict(english.to_dict()) == english
    # The sender's ledger keeps the window's fallback template with its language too.
    record = SendRecord.pending(english, token="t", lease_seconds=30, claimed_at=0.0)
    assert SendRecord.from_json(record.to_json()).fallback_template == english.fallback_template


async def test_a_late_whatsapp_reply_in_a_spanish_conversation_falls_back_to_the_spanish_welcome_back(
    make_runtime: Callable[..., Runtime], twilio: Twilio, clock: FrozenClock
) -> None:
    runtime = make_runtime()
    key = ConversationKey(Channel.WHATSAPP, BOT_NUMBER, ROSA)
    twilio.sim.record_inbound_time(Channel.WHATSAPP, user=ROSA, bot=BOT_NUMBER)
    clock.advance(timedelta(hours=30))  # the turn re-run a day late: the window closed
    state = ConversationState.new(key)
    state.last_inbound_at = clock.timestamp() - 30 * 3600
    state.data[STATE_KEY] = "es"
    msg = InboundMessage(message_sid="SM" + "9" * 32, channel=Channel.WHATSAPP, user=ROSA, bot=BOT_NUMBER,
                         body="hola", profile_name="Rosa")
    assert runtime.rest_deliver is not None
    await runtime.rest_deliver(msg, TurnResult(replies=(Reply(text="respuesta tardía"),)), state)
    [message] = twilio.sent()
    registry = runtime.require_outbound().templates
    assert message.content_sid == registry.get("welcome_back", "es").content_sid
    assert message.body == ("Hola Rosa, tenemos novedades para usted de Bright Smile Dental. "
                            "Responda a este mensaje para continuar.")

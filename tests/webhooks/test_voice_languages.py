"""Calls in Spanish: <Say language="es-US"> with a Spanish voice, <Gather language="es-US">."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

from bot.settings import Settings
from bot.storage import MemoryStore
from tests.conftest import ACCOUNT_SID, BOT_NUMBER, signed_client
from webhooks.app import create_app

ROOT = Path(__file__).resolve().parents[2]
USER = "+14155550123"
CALL = "CA" + "ab" * 16


def call_form(**extra: str) -> dict[str, str]:
    return {
        "CallSid": CALL, "AccountSid": ACCOUNT_SID, "From": USER, "To": BOT_NUMBER, "Caller": USER,
        "Called": BOT_NUMBER, "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01", **extra,
    }


def spanish_number(tmp_path: Path) -> Path:
    """The demo business with the bot's number answering in Spanish (language_numbers)."""
    intents = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", intents)
    path = intents / "business.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "language_numbers: {}", f'language_numbers: {{"{BOT_NUMBER}": es}}'), encoding="utf-8")
    return intents


async def test_a_spanish_number_greets_speaks_and_listens_in_es_us(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    app = create_app(make_settings(intents_dir=str(spanish_number(tmp_path))), store=MemoryStore())
    async with app.router.lifespan_context(app):
        client = signed_client(app)
        greeting = ET.fromstring((await client.post("/twilio/voice", call_form())).text)  # noqa: S314
        gather = greeting.find("Gather")
        assert gather is not None and gather.get("language") == "es-US"
        assert gather.get("action") == "/twilio/voice/turn?n=1&menu=1&lang=es"
        assert "Limpieza" in (gather.get("hints") or "")
        say = gather.find("Say")
        assert say is not None and say.get("language") == "es-US" and say.get("voice") == "Polly.Lupe-Neural"
        assert (say.text or "").startswith("¡Hola! Le atiende Bright Smile Dental.")

        turn = await client.post("/twilio/voice/turn?n=1&menu=1&lang=es",
                                 call_form(SpeechResult="cuanto cuesta una limpieza", Confidence="0.92"))
        root = ET.fromstring(turn.text)  # noqa: S314
        gather = root.find("Gather")
        assert gather is not None and gather.get("language") == "es-US"
        spoken = [s for s in root.iter("Say")]
        assert spoken[0].text is not None and spoken[0].text.startswith("Limpieza cuesta $120")
        assert all(s.get("language") == "es-US" and s.get("voice") == "Polly.Lupe-Neural" for s in spoken)
        await client.http.aclose()


async def test_a_call_that_asks_for_spanish_continues_in_spanish(settings: Settings) -> None:
    app = create_app(settings, store=MemoryStore())
    async with app.router.lifespan_context(app):
        client = signed_client(app)
        greeting = ET.fromstring((await client.post("/twilio/voice", call_form())).text)  # noqa: S314
        first = greeting.find("Gather")
        assert first is not None and first.get("language") == "en-US"
        turn = await client.post("/twilio/voice/turn?n=1&menu=1", call_form(SpeechResult="en español por favor"))
        root = ET.fromstring(turn.text)  # noqa: S314
        gather = root.find("Gather")
        assert gather is not None and gather.get("language") == "es-US"
        assert gather.get("action") == "/twilio/voice/turn?n=2&lang=es"
        say = gather.find("Say")
        assert say is not None and (say.text or "").startswith("¡Claro! Seguimos en español.")
        # A low-confidence answer is confirmed in Spanish too (the language is in the signed action URL).
        heard = await client.post("/twilio/voice/turn?n=2&lang=es",
                                  call_form(SpeechResult="limpieza el jueves", Confidence="0.2"))
        question = ET.fromstring(heard.text).find("Gather/Say")  # noqa: S314
        assert question is not None and (question.text or "").startswith("Creo que dijo: limpieza el jueves.")
        assert question.get("language") == "es-US"
        await client.http.aclose()

"""Reading a message as an answer to a reminder, the way people really text (intents/reminder_replies.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.confirmations.replies import ReminderReplies, load_reminder_replies
from bot.errors import ConfigError


@pytest.fixture(scope="module")
def replies() -> ReminderReplies:
    return load_reminder_replies(Path("intents/reminder_replies.yaml"))


@pytest.mark.parametrize("text", [
    "C", "c", "c.", " C ", "yes", "Yes!!", "yep", "ok", "confirm", "Confirmed", "yes please", "👍", "👍🏽", "✅",
    "I'll be there", "I’ll be there!", "ill b there", "will be there thx", "see you then", "yes i'll be there, thanks!",
    "sorry just saw this. I’ll be there 👍", "ok sounds good", "Perfect!",
])
def test_confirmations(replies: ReminderReplies, text: str) -> None:
    assert replies.read(text) == "confirm"


@pytest.mark.parametrize("text", [
    "R", "r", "reschedule", "can we move it?", "can we move it to friday", "Could I change my appointment",
    "hi. can we move it to friday?", "need to reschedule my appt",
])
def test_reschedules(replies: ReminderReplies, text: str) -> None:
    assert replies.read(text) == "reschedule"


@pytest.mark.parametrize("text", [
    "can't make it", "cant make it sorry", "Can’t make it sorry", "cancel it", "please cancel my appointment",
    "i need to cancel, sick", "ugh sorry, I can't make it anymore", "im not gonna make it",
])
def test_cancellations(replies: ReminderReplies, text: str) -> None:
    assert replies.read(text) == "cancel"


@pytest.mark.parametrize("text", [
    "", "stop", "STOP", "hi", "what time is it", "ok, what are your hours?", "yes please. also what time do you open",
    "cancel", "can i book a cleaning", "thanks", "see you", "bye", "c you later", "where do i park",
])
def test_other_messages_are_no_answer(replies: ReminderReplies, text: str) -> None:
    # A bare "cancel" stays compliance's (an opt-out keyword on SMS), "bye" a goodbye.
    assert replies.read(text) is None


def test_codes_are_the_bare_letters(replies: ReminderReplies) -> None:
    assert replies.is_code("C") and replies.is_code("r.") and not replies.is_code("yes")


def test_a_bad_pattern_is_a_start_up_error(tmp_path: Path) -> None:
    bad = tmp_path / "reminder_replies.yaml"
    bad.write_text("version: 1\nconfirm: ['^(c$']\nreschedule: ['^r$']\ncancel: ['x']\n")
    with pytest.raises(ConfigError, match="confirm"):
        load_reminder_replies(bad)
    bad.write_text("version: 1\nconfirm: ['^c$']\nreschedule: ['^r$']\ncancle: ['x']\n")
    with pytest.raises(ConfigError, match="cancle"):
        load_reminder_replies(bad)


# -- in Spanish (intents/es/reminder_replies.yaml): a Spanish conversation reads these, then the English ones --


@pytest.fixture(scope="module")
def spanish(replies: ReminderReplies) -> ReminderReplies:
    return replies.speaking("es")


@pytest.mark.parametrize("text", [
    "si", "Sí", "Si!!", "siii", "sip", "sí, gracias", "confirmo", "confirmo!!", "Confirmado", "si confirmo",
    "ahí estaré", "ahi estare 👍", "Sí, ahí estaré", "alli estare sin falta", "nos vemos entonces", "claro que si",
    "dale", "ok gracias", "perdon apenas vi esto. si ahi estare",
    "C", "ok", "👍🏽", "I'll be there",  # the English answers, and the reminder's own code
])
def test_spanish_confirmations(spanish: ReminderReplies, text: str) -> None:
    assert spanish.read(text) == "confirm"


@pytest.mark.parametrize("text", [
    "R", "reprogramar", "cambiar la cita porfa", "necesito cambiar la hora", "quiero cambiarla", "mejor el jueves",
    "mejor mañana", "la puedo cambiar pal jueves?", "¿La puedo cambiar para el viernes?", "se puede cambiar la cita?",
    "podemos moverla a la otra semana", "can we move it?",
])
def test_spanish_reschedules(spanish: ReminderReplies, text: str) -> None:
    assert spanish.read(text) == "reschedule"


@pytest.mark.parametrize("text", [
    "no puedo ir", "no puedo ir mañana", "No puedo ir mañana :(", "ya no voy a poder ir", "lo siento, no puedo asistir",
    "no voy a ir", "cancélala", "Cancela porfa", "cancela la cita", "cancelen mi cita por favor", "necesito cancelar",
    "ok, pero no puedo ir", "cant make it",
])
def test_spanish_cancellations(spanish: ReminderReplies, text: str) -> None:
    assert spanish.read(text) == "cancel"


@pytest.mark.parametrize("text", [
    # A lone "no" cancels nothing (as in English); nor a lone "cancela"/"cancelar" (as a lone "cancel").
    "no", "No!", "no gracias", "cancela", "cancelar", "nos vemos", "gracias", "hola", "adios",
    "que hora abren?", "ok, a que hora abren?", "si. cuanto cuesta una limpieza", "cancela los mensajes",
    "quiero una cita", "stop", "baja",
])
def test_other_spanish_messages_are_no_answer(spanish: ReminderReplies, text: str) -> None:
    assert spanish.read(text) is None


def test_english_reads_only_english(replies: ReminderReplies) -> None:
    assert replies.speaking("en") is replies
    assert replies.read("si") is None and replies.read("no puedo ir") is None


def test_a_language_without_its_own_file_reads_the_english_words(tmp_path: Path) -> None:
    english = tmp_path / "reminder_replies.yaml"
    english.write_text(Path("intents/reminder_replies.yaml").read_text())
    replies = load_reminder_replies(english)
    assert replies.speaking("es") is replies


def test_a_bad_spanish_file_is_a_start_up_error_naming_it(tmp_path: Path) -> None:
    english = tmp_path / "reminder_replies.yaml"
    english.write_text(Path("intents/reminder_replies.yaml").read_text())
    (tmp_path / "es").mkdir()
    twin = tmp_path / "es" / "reminder_replies.yaml"
    twin.write_text("version: 1\nconfirm: ['^(si$']\nreschedule: ['^r$']\ncancel: ['x']\n")
    with pytest.raises(ConfigError, match=r"es/reminder_replies\.yaml: invalid data:\n  confirm: invalid regex"):
        load_reminder_replies(english)

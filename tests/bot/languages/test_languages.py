"""Languages as data: profiles, detection with a floor, the kept language, Spanish words and templates."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.errors import ConfigError, TemplateError
from bot.languages.business import localized_business
from bot.languages.choose import STATE_KEY, Languages
from bot.languages.detect import LanguageDetector
from bot.languages.openers import load_openers
from bot.languages.profile import profile_for
from bot.messages import Channel, InboundMessage
from bot.nlu.slots import extract_slots
from bot.storage.base import ConversationKey, ConversationState
from bot.templates import ReplyTemplates

ROOT = Path(__file__).resolve().parents[3]
NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=NY)  # a Monday
BOT = "+15005550006"
USER = "+14155550123"


def message(body: str, *, bot: str = BOT, channel: Channel = Channel.SMS) -> InboundMessage:
    return InboundMessage("SM" + "0" * 32, channel, USER, bot, body)


def state(turns: int = 1) -> ConversationState:
    fresh = ConversationState.new(ConversationKey(Channel.SMS, BOT, USER))
    fresh.turns = turns
    return fresh


@pytest.fixture(scope="module")
def languages() -> Languages:
    return Languages(("en", "es"), detector=LanguageDetector(("en", "es")))


def test_one_word_or_a_name_never_decides_the_language() -> None:
    detector = LanguageDetector(("en", "es"))
    for text in ("ok", "gracias", "si", "Ana", "Carlos Rodriguez", "ok gracias", "3pm", "👍"):
        assert detector.detect(text) is None, text
    assert detector.detect("hola, quiero una cita para mañana") == "es"
    assert detector.detect("can i book a cleaning tomorrow") == "en"


def test_a_conversation_keeps_its_language_through_short_answers(languages: Languages) -> None:
    convo = state()
    assert languages.choose(message("hola, quiero una cita"), convo).code == "es"
    assert convo.data[STATE_KEY] == "es"
    convo.turns = 2
    for reply in ("ok", "si", "gracias", "Carlos Rodriguez", "2", "3pm"):
        assert languages.choose(message(reply), convo).code == "es", reply
    assert languages.choose(message("can you tell me what your hours are on saturday"), convo).code == "en"


def test_asking_switches_and_is_reported(languages: Languages) -> None:
    convo = state(turns=3)
    choice = languages.choose(message("en español por favor"), convo)
    assert (choice.code, choice.asked, choice.changed) == ("es", True, True)
    choice = languages.choose(message("english please"), convo)
    assert (choice.code, choice.asked) == ("en", True)
    assert convo.data[STATE_KEY] == "en"
    assert languages.choose(message("no hablo ingles"), convo).code == "es"


def test_an_english_conversation_state_stays_as_it_was(languages: Languages) -> None:
    convo = state()
    assert languages.choose(message("can i book a cleaning tomorrow at 3"), convo).code == "en"
    assert STATE_KEY not in convo.data


def test_a_number_can_start_conversations_in_spanish() -> None:
    languages = Languages(("en", "es"), detector=LanguageDetector(("en", "es")), by_number={"+15005550007": "es"})
    assert languages.choose(message("ok", bot="+15005550007"), state()).code == "es"
    assert languages.choose(message("ok"), state()).code == "en"


def test_dates_and_times_are_written_for_the_language() -> None:
    moment = datetime(2026, 3, 4, 15, 30, tzinfo=NY)
    assert profile_for("en").fmt_when(moment, NY) == "Wed, Mar 4 at 3:30 PM"
    assert profile_for("es").fmt_when(moment, NY) == "miércoles 4 de marzo a las 3:30 pm"
    assert profile_for("es").fmt_date(date(2026, 3, 7)) == "sábado 7 de marzo"
    assert len(profile_for("es").fmt_short(moment, NY)) <= 20  # a WhatsApp button title


def test_spanish_sms_text_drops_only_the_accents_gsm7_lacks() -> None:
    es = profile_for("es")
    assert es.for_sms("¿Qué día? Sí, mañana más tarde") == "¿Qué dia? Si, mañana mas tarde"
    assert es.for_sms("¡Listo! Sí 👍") == "¡Listo! Sí 👍"  # UCS-2 anyway: as written
    assert profile_for("en").for_sms("José") == "José"


SPANISH = localized_business(ROOT / "intents" / "business.yaml", "es")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mañana", {"date": "2026-03-03"}),
        ("mñn a las 3 de la tarde", {"date": "2026-03-03", "time": "15:00"}),
        ("el jueves", {"date": "2026-03-05"}),
        ("la proxima semana", {"date": "2026-03-09"}),
        ("la próxima semana el martes", {"date": "2026-03-10"}),
        ("a las 3 de la tarde", {"time": "15:00"}),
        ("el viernes a las 9 y media", {"date": "2026-03-06", "time": "09:30"}),
        ("el 14 de marzo a las 10", {"date": "2026-03-14", "time": "10:00"}),
        ("pasado mañana en la mañana", {"date": "2026-03-04", "time": "09:00"}),
        ("en dos semanas", {"date": "2026-03-16"}),
        ("una limpiesa xfa", {"service": "cleaning"}),
        ("blanquiamiento", {"service": "whitening"}),
        ("una revisión", {"service": "checkup"}),
        ("tengo una caries", {"service": "filling"}),
    ],
)
def test_spanish_dates_times_and_services_are_read(text: str, expected: dict[str, str]) -> None:
    entities = extract_slots(text, now=NOW, business=SPANISH).as_entities()
    assert {k: entities.get(k) for k in expected} == expected


def test_the_spanish_view_keeps_the_facts_and_changes_the_words() -> None:
    assert SPANISH.language == "es" and SPANISH.services["cleaning"].label == "Limpieza"
    assert SPANISH.services["filling"].price_amount == "$150" and SPANISH.services["filling"].price_from
    assert SPANISH.service("cleaning") is SPANISH.services["cleaning"]  # English names still work
    assert set(SPANISH.faq) == set(yaml.safe_load((ROOT / "intents" / "business.yaml").read_text())["faq"])


def copy_intents(tmp_path: Path) -> Path:
    target = tmp_path / "intents"
    shutil.copytree(ROOT / "intents", target)
    return target


def test_a_missing_service_or_faq_translation_stops_start_up_naming_it(tmp_path: Path) -> None:
    intents = copy_intents(tmp_path)
    words = intents / "es" / "business.yaml"
    data = yaml.safe_load(words.read_text(encoding="utf-8"))
    del data["services"]["whitening"], data["faq"]["parking"]
    words.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        localized_business(intents / "business.yaml", "es")
    assert "services.whitening: missing" in str(caught.value) and "faq.parking: missing" in str(caught.value)


def test_a_missing_reply_translation_stops_start_up_naming_the_template(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    ReplyTemplates(prompts, languages=("en", "es"))  # complete: fine
    (prompts / "replies" / "es" / "booked.whatsapp.j2").unlink()
    with pytest.raises(TemplateError) as caught:
        ReplyTemplates(prompts, languages=("en", "es"))
    assert "prompts/replies/es/booked.whatsapp.j2" in str(caught.value)


def test_replies_to_staff_stay_in_the_business_language() -> None:
    templates = ReplyTemplates(ROOT / "prompts").in_language("es")
    text = templates.render("handoff_staff", "sms", business=SPANISH, user=USER, channel="sms", recent="hola")
    assert "asked for a person" in text
    assert templates.render("thanks", "sms").startswith("¡De nada!")


def test_an_unknown_language_in_business_yaml_is_refused(tmp_path: Path) -> None:
    intents = copy_intents(tmp_path)
    path = intents / "business.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("languages: [en, es]", "languages: [en, fr]"),
                    encoding="utf-8")
    from bot.business import load_business

    with pytest.raises(ConfigError, match="unknown language 'fr'"):
        load_business(path)


def test_only_messages_with_spanish_words_are_detected_in_an_english_conversation() -> None:
    markers = LanguageDetector(("en", "es"), markers=frozenset({"quiero", "cita", "hola"}))
    languages = Languages(("en", "es"), detector=markers)
    assert not markers.may_be_other("can i book a cleaning tomorrow")
    convo = state()
    assert languages.choose(message("hola, quiero una cita"), convo).code == "es"
    convo.turns = 2
    # Back to English: in a Spanish conversation every message is detected, markers or not.
    assert languages.choose(message("can you tell me what your hours are on saturday"), convo).code == "en"


def test_a_lone_spanish_greeting_starts_a_new_conversation_in_spanish() -> None:
    languages = Languages(("en", "es"), detector=LanguageDetector(("en", "es")),
                          openers=load_openers(ROOT / "intents", ("es",)))
    for text in ("hola", "Holaa!!", "buenas", "buenos días", "ola", "Buenas tardes 👋"):
        convo = state()
        assert languages.choose(message(text), convo).code == "es", text
        assert convo.data[STATE_KEY] == "es"
    for text in ("ok", "si", "gracias", "Ana", "hi", "no"):
        convo = state()
        assert languages.choose(message(text), convo).code == "en", text
        assert STATE_KEY not in convo.data, text


def test_an_opener_never_switches_a_conversation_that_has_a_language() -> None:
    languages = Languages(("en", "es"), detector=LanguageDetector(("en", "es")),
                          openers=load_openers(ROOT / "intents", ("es",)))
    convo = state()
    assert languages.choose(message("hi can i book a cleaning"), convo).code == "en"
    convo.turns = 2
    for text in ("hola", "Holaa!", "buenas", "ola"):
        assert languages.choose(message(text), convo).code == "en", text
    # A second message of a conversation with no language kept is not new either.
    later = state(turns=2)
    assert languages.choose(message("hola"), later).code == "en"


def test_a_malformed_openers_file_stops_start_up_naming_it(tmp_path: Path) -> None:
    (tmp_path / "es").mkdir()
    (tmp_path / "es" / "openers.yaml").write_text("openers: hola\nextra: 1\n")
    with pytest.raises(ConfigError, match=r"openers\.yaml"):
        load_openers(tmp_path, ("es",))

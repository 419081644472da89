"""The content-template registry: the shipped file, validation, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import TemplateError
from bot.outbound.templates import ContentTemplates
from devtools.simulator.content import simulator_templates
from tests.bot.outbound.conftest import ROOT

SID = "HX" + "0" * 32
VALID = f"""
reminder:
  content_sid: {SID}
  variables: [name, time]
  body: "Hi {{{{1}}}}, see you {{{{2}}}}."
  sms_fallback: "Hi {{{{ name }}}}, see you {{{{ time }}}}."
"""


def load(tmp_path: Path, text: str) -> ContentTemplates:
    path = tmp_path / "templates.yaml"
    path.write_text(text)
    return ContentTemplates.load(path)


def test_the_shipped_registry_has_what_the_bot_needs() -> None:
    registry = ContentTemplates.load(ROOT / "intents" / "templates.yaml")
    assert {"appointment_reminder", "appointment_confirmation", "quick_reply_2", "quick_reply_3",
            "welcome_back"} <= registry.names
    assert registry.get("appointment_reminder").variables == ("name", "service", "time")
    assert registry.get("quick_reply_3").type == "twilio/quick-reply"
    # One source for the simulator too: same SIDs, same text.
    by_sid = {t.sid: t for t in simulator_templates(registry)}
    reminder = registry.get("appointment_reminder")
    assert by_sid[reminder.content_sid].body == reminder.body
    assert sorted(by_sid[registry.get("quick_reply_2").content_sid].placeholders) == ["1", "2", "3", "4", "5"]


def test_render_variables_by_position_and_the_sms_fallback(tmp_path: Path) -> None:
    registry = load(tmp_path, VALID)
    values = {"name": " Ana ", "time": "Tue 3pm"}
    assert registry.render_variables("reminder", values) == {"1": "Ana", "2": "Tue 3pm"}
    assert registry.content_variables("reminder", values) == '{"1":"Ana","2":"Tue 3pm"}'
    assert registry.render_sms("reminder", values) == "Hi Ana, see you Tue 3pm."


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"name": "Ana"}, "missing time"),
        ({"name": "Ana", "time": "3pm", "place": "x"}, "unknown place"),
        ({"name": "  ", "time": "3pm"}, "empty value for name"),
        ({"name": "A" * 1020, "time": "3pm"}, "limit is 1024"),
    ],
)
def test_values_are_validated(tmp_path: Path, values: dict[str, str], problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        load(tmp_path, VALID).render_variables("reminder", values)


def test_unknown_template(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="unknown content template 'nope'"):
        load(tmp_path, VALID).get("nope")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (VALID.replace(SID, "HX123"), "reminder.content_sid"),
        (VALID.replace("body:", "bdy:"), "reminder.bdy: unknown key"),
        (VALID.replace("{{2}}", "{{3}}"), "placeholders"),
        (VALID.replace("[name, time]", "[name, Time]"), "lower_snake_case"),
        (VALID.replace("{{ time }}.", "{{ tme }}."), "sms_fallback uses tme"),
        (VALID.replace("{{ time }}.", "{{ time }."), "sms_fallback"),
        (VALID + VALID.replace("reminder:", "other:"), "share ContentSid"),
        (VALID.replace("variables:", "buttons: [{id: a, title: A}]\n  variables:"), "buttons need a type"),
        (VALID + VALID, "duplicate key"),
    ],
)
def test_invalid_files_name_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem) as info:
        load(tmp_path, text)
    assert "templates.yaml" in str(info.value)


# -- another language's variant: an ``es:`` block under the template (docs/languages.md) --

VARIANTS = f"""
reminder:
  content_sid: {SID}
  type: twilio/quick-reply
  variables: [name, time]
  body: "Hi {{{{1}}}}, see you {{{{2}}}}."
  buttons: [{{id: confirm, title: Confirm}}]
  sms_fallback: "Hi {{{{ name }}}}, see you {{{{ time }}}}. Reply C."
  es:
    content_sid: HX{"1" * 32}
    body: "Hola {{{{1}}}}, nos vemos el {{{{2}}}}."
    buttons: [{{id: confirm, title: Confirmar}}]
    sms_fallback: "Hola {{{{ name }}}}, nos vemos el {{{{ time }}}}. Responda C, ¿sí?"
"""


def test_a_language_variant_has_its_own_sid_words_and_sms_text(tmp_path: Path) -> None:
    registry = load(tmp_path, VARIANTS)
    english, spanish = registry.get("reminder"), registry.get("reminder", "es")
    assert registry.get("reminder", "en") is english and spanish.ref == "reminder.es"
    assert (spanish.content_sid, spanish.type, spanish.variables) == ("HX" + "1" * 32, english.type, english.variables)
    assert [b.title for b in spanish.buttons] == ["Confirmar"] and registry.names == {"reminder"}
    values = {"name": "Ana", "time": "sábado 7 de marzo"}
    assert registry.render_variables("reminder", values, "es") == {"1": "Ana", "2": "sábado 7 de marzo"}
    # On SMS without the accents GSM-7 lacks, as every Spanish SMS reply (é, ñ, ¿ stay).
    assert registry.render_sms("reminder", values, "es") == "Hola Ana, nos vemos el sabado 7 de marzo. Responda C, ¿si?"
    assert registry.render_sms("reminder", values) == "Hi Ana, see you sábado 7 de marzo. Reply C."
    # Both are registered with the simulator, each under its own SID.
    assert {t.sid for t in simulator_templates(registry)} == {SID, "HX" + "1" * 32}
    registry.check_languages(["reminder"], ["en", "es"])
    with pytest.raises(TemplateError, match="no 'fr' variant"):
        registry.get("reminder", "fr")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("title: Confirmar}", "title: Confirmar}, {id: later, title: Luego}"), "ids confirm in that order"),
        (("    body: \"Hola", "    variables: [x]\n    body: \"Hola"), "variables cannot differ from reminder's"),
        (("  es:", "  fr:"), "reminder.fr: not a language with a profile"),
        (("HX" + "1" * 32, SID), "share ContentSid"),
        (("Hola {{ name }}", "Hola {{ nombre }}"), "reminder.es.sms_fallback uses"),
    ],
)
def test_a_bad_variant_stops_loading_naming_it(tmp_path: Path, change: tuple[str, str], problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        load(tmp_path, VARIANTS.replace(*change))


def test_a_template_the_bot_sends_on_its_own_needs_every_language(tmp_path: Path) -> None:
    registry = load(tmp_path, VALID)
    registry.check_languages(["reminder"], ["en"])
    registry.check_languages(["not_registered"], ["en", "es"])  # a template not there: its job is off
    with pytest.raises(TemplateError, match=r"missing translation: .*templates.yaml: reminder has no 'es' variant"):
        registry.check_languages(["reminder"], ["en", "es"])


def test_the_shipped_templates_the_bot_sends_on_its_own_speak_spanish() -> None:
    registry = ContentTemplates.load(ROOT / "intents" / "templates.yaml")
    own = ["appointment_reminder", "visit_follow_up", "visit_missed", "recall_invite"]
    registry.check_languages(own, ["en", "es"])
    sids = {registry.get(name, language).content_sid for name in own for language in ("en", "es")}
    assert len(sids) == 8

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

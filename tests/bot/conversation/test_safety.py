"""Safety words (intents/safety.yaml): emergencies and complaints are recognised, the rest is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compliance import is_revocation, keyword_of
from bot.errors import ConfigError
from bot.safety import SafetyRules, load_safety

EMERGENCIES = [
    ("my tooth is bleeding a lot and my face is swelling up", "bleeding"),
    ("the pain wont stop since my filling last week", "lasting_pain"),
    ("I can't stop the bleeding", "bleeding"),
    ("my cheek is swollen", "swelling"),
    ("my son fell and knocked out his front tooth", "trauma"),
    ("i broke my tooth on a popcorn kernel", "trauma"),
    ("severe toothache, cant sleep", "severe_pain"),
    ("tooth pain for 3 days now", "lasting_pain"),
    ("i have a fever and my jaw hurts", "fever"),
    ("its hard to swallow since my extraction", "breathing"),
    ("is this a dental emergency?", "emergency"),
    ("me duele la muela y tengo la cara hinchada", "swelling_es"),
    ("no para de sangrar, sangra mucho", "bleeding_es"),
]
COMPLAINTS = [
    "this is ridiculous, i waited an hour",
    "your receptionist was so rude to me",
    "I want to make a complaint",
    "terrible service, never coming back",
    "i was overcharged and i want a refund",
    "wtf nobody called me back",
    "i want to speak to the manager",
]
ORDINARY = [
    "book a cleaning tomorrow at 3pm",
    "how much is whitening",
    "what are your hours",
    "stop",
    "can i cancel my appointment",
    "thanks!",
    "my tooth hurts a little, can i get a checkup",
    "do you do fillings",
]


@pytest.mark.parametrize(("text", "rule"), EMERGENCIES)
def test_emergencies_are_recognised(safety: SafetyRules, text: str, rule: str) -> None:
    found = safety.check(text)
    assert found is not None and found.kind == "emergency" and found.rule == rule
    assert found.reply == "safety_emergency" and found.staff_notice == "handoff_staff_urgent"


@pytest.mark.parametrize("text", COMPLAINTS)
def test_complaints_are_recognised(safety: SafetyRules, text: str) -> None:
    found = safety.check(text)
    assert found is not None and found.kind == "complaint"


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_messages_are_not_safety(safety: SafetyRules, text: str) -> None:
    assert safety.check(text) is None


def test_an_emergency_wins_over_a_complaint(safety: SafetyRules) -> None:
    found = safety.check("this is ridiculous, my face is swollen and nobody answers")
    assert found is not None and found.kind == "emergency"


@pytest.mark.parametrize("text", ["I can't stop the bleeding", "the pain wont stop", "make the bleeding stop pls"])
def test_stop_inside_an_emergency_is_no_opt_out(safety: SafetyRules, text: str) -> None:
    # Compliance runs first: these must pass it untouched and reach the safety check.
    assert keyword_of(text) is None and not is_revocation(text)
    assert safety.check(text) is not None


def test_the_emergency_number_is_data(safety: SafetyRules) -> None:
    assert safety.emergency_number == "911"
    assert safety.templates == {
        "safety_emergency", "handoff_staff_urgent", "safety_complaint", "handoff_staff_complaint"
    }


def test_a_bad_rule_names_the_file_and_rule(tmp_path: Path) -> None:
    path = tmp_path / "safety.yaml"
    path.write_text(
        'version: 1\nemergency_number: "112"\nkinds:\n  emergency:\n    reply: r\n    staff_notice: s\n'
        '    rules:\n      broken: "(unclosed"\n'
    )
    with pytest.raises(ConfigError, match=r"(?s)safety\.yaml.*kinds\.emergency\.rules.*broken"):
        load_safety(path)

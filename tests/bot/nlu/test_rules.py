from __future__ import annotations

import pytest

from bot.nlu.intents import IntentCatalog
from bot.nlu.rules import RuleMatcher


@pytest.fixture(scope="module")
def rules(catalog: IntentCatalog) -> RuleMatcher:
    return RuleMatcher(catalog)


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("1", "affirm"),
        ("2", "deny"),
        ("#1", "affirm"),
        ("2.", "deny"),
        ("Yes", "affirm"),
        ("yes please!", "affirm"),
        ("y", "affirm"),
        ("ok 👍", "affirm"),
        ("👍🏾", "affirm"),
        ("nope", "deny"),
        ("n", "deny"),
        ("never mind", "deny"),
        ("please stop texting me", "opt_out"),
        ("Stop sending me messages!", "opt_out"),
        ("STOP", "opt_out"),
        ("unsubscribe me", "opt_out"),
        ("START", "opt_in"),
        ("opt me back in", "opt_in"),
        ("HELP", "help"),
        ("info", "help"),
        ("hi there", "greet"),
        ("hi again", "greet"),
        ("hey, it's me again!", "greet"),
        ("hello again 👋", "greet"),
        ("Good morning!", "greet"),
        ("thx!", "thanks"),
        ("thank you so much 🙏", "thanks"),
        ("bye 👋", "goodbye"),
        ("can i talk to a real person", "human"),
        ("agent", "human"),
        ("my appointments", "my_appointments"),
        ("hours?", "hours"),
        ("prices?", "pricing"),
        ("I need to reschedule", "reschedule"),
    ],
)
def test_rules(rules: RuleMatcher, text: str, intent: str) -> None:
    match = rules.match(text)
    assert match is not None, text
    assert (match.intent, match.confidence) == (intent, 1.0)


@pytest.mark.parametrize(
    "text",
    [
        "3",
        "yes but can i come at 4 instead",
        "no i want whitening not cleaning",
        "stop booking me for mornings, afternoons are better",
        "when are you open",
        "how much is a gallon of milk",
        "hi again, can i book a cleaning",  # a request, not only a greeting: the classifier's
        "",
    ],
)
def test_no_rule_for_fuzzy_messages(rules: RuleMatcher, text: str) -> None:
    assert rules.match(text) is None


def test_stop_booking_ends_a_flow_not_messages(rules: RuleMatcher) -> None:
    match = rules.match("stop booking")
    assert match is not None and match.intent == "deny"


def test_numbered_choices_are_configurable(catalog: IntentCatalog) -> None:
    rules = RuleMatcher(catalog, numbered_choices={"1": "book", "2": "cancel", "3": "human"})
    assert [m.intent for m in map(rules.match, ["1", "2", "3"]) if m] == ["book", "cancel", "human"]


def test_numbered_choices_must_name_known_intents(catalog: IntentCatalog) -> None:
    with pytest.raises(ValueError, match="unknown intents"):
        RuleMatcher(catalog, numbered_choices={"1": "dance"})

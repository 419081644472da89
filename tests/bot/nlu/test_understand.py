from __future__ import annotations

from bot.nlu.understand import NLU, Understanding
from tests.bot.nlu.conftest import INTENTS_DIR, MONDAY_9AM


def test_rule_wins_with_full_confidence(nlu: NLU) -> None:
    result = nlu.classify("yes please")
    assert (result.intent, result.confidence, result.source) == ("affirm", 1.0, "rule")
    assert not result.needs_model


def test_classifier_with_entities(nlu: NLU) -> None:
    result = nlu.classify("cn i bk a cleaning 4 tmrw at 3")
    assert (result.intent, result.source) == ("book", "classifier")
    assert result.entities["service"] == "cleaning"
    assert result.entities["datetime"] == "2026-03-03T15:00:00-05:00"
    assert result.slots.service == "cleaning"


def test_out_of_scope_leaves_a_hook_for_the_model(nlu: NLU) -> None:
    result = nlu.classify("what's the capital of peru")
    assert result.intent == "fallback"
    assert result.needs_model


def test_empty_message_needs_no_model(nlu: NLU) -> None:
    result = nlu.classify("   ")
    assert result.intent == "fallback"
    assert not result.needs_model


def test_low_confidence_keeps_the_best_guess() -> None:
    result = Understanding("hmm", "fallback", 0.2, source="classifier", best="book")
    assert result.low_confidence and result.needs_model


def test_now_override(nlu: NLU) -> None:
    later = MONDAY_9AM.replace(day=9)
    assert nlu.classify("tomorrow at 3", now=later).entities["date"] == "2026-03-10"


def test_from_dir_loads_intents_and_business() -> None:
    nlu = NLU.from_dir(INTENTS_DIR)
    assert nlu.business.name == "Bright Smile Dental"
    got = [nlu.classify(t).intent for t in ("what r ur hrs on sat", "how much 4 whitening", "2")]
    assert got == ["hours", "pricing", "deny"]

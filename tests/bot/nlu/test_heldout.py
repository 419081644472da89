"""The held-out benchmark as a regression test: editing intents.yaml must keep the targets."""

from __future__ import annotations

from bench.classifier import ROOT, load_heldout, score
from bot.nlu.intents import FALLBACK, IntentCatalog
from bot.nlu.understand import NLU


def test_heldout_set_meets_the_targets(catalog: IntentCatalog, nlu: NLU) -> None:
    # load_heldout also refuses any overlap with the training examples.
    examples = load_heldout(ROOT / "bench" / "data" / "heldout.yaml", catalog)
    assert len(examples) >= 160
    assert sum(e.intent == FALLBACK for e in examples) >= 30
    report = score(nlu, examples)
    assert report["accuracy"] >= 0.95, report["errors"]
    assert report["oos_recall"] >= 0.85, report["errors"]


def test_spanish_heldout_set_meets_the_targets() -> None:
    # Spanish as the bot reads it (bot/languages/nlu.py): intents/es/ examples, the Spanish business words.
    from bench.classifier import NOW
    from bot.clock import FrozenClock
    from bot.languages.nlu import language_nlu

    nlu = language_nlu(ROOT / "intents", "es", clock=FrozenClock(NOW))
    examples = load_heldout(ROOT / "bench" / "data" / "heldout.es.yaml", nlu.catalog)
    assert len(examples) >= 150
    report = score(nlu, examples)
    assert report["accuracy"] >= 0.90, report["errors"]

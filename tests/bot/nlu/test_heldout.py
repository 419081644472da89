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
    # Spanish as the bot reads it: intents/es/ examples, the Spanish business words, accents optional.
    from bench.classifier import NOW
    from bot.clock import FrozenClock
    from bot.languages.business import localized_business
    from bot.languages.profile import fold_accents
    from bot.nlu.intents import load_intents

    catalog = load_intents(ROOT / "intents" / "es" / "intents.yaml")
    business = localized_business(ROOT / "intents" / "business.yaml", "es")
    examples = load_heldout(ROOT / "bench" / "data" / "heldout.es.yaml", catalog)
    assert len(examples) >= 150
    nlu = NLU(catalog, business, clock=FrozenClock(NOW), reader=fold_accents)
    report = score(nlu, examples)
    assert report["accuracy"] >= 0.90, report["errors"]

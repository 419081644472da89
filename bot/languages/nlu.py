"""Understanding in another language: ``intents/<code>/intents.yaml`` over the business's words in it.

One place builds it for the Brain, ``bot classify`` and the benchmark alike:
the language's intent catalog (same intent names as English), its business
view (:func:`bot.languages.business.localized_business`), a classifier
trained from its examples (memoised per process, as the English one), and
text read lower case without accents ("sí" = "si").

Example::

    nlu = language_nlu(Path("intents"), "es", clock=clock)
    nlu.classify("kiero una cita xfa mñn").intent   # 'book'
"""

from __future__ import annotations

from pathlib import Path

from bot.clock import Clock
from bot.errors import ConfigError
from bot.languages.business import localized_business
from bot.languages.profile import fold_accents
from bot.memo import memo
from bot.nlu.classifier import IntentClassifier
from bot.nlu.intents import load_intents
from bot.nlu.understand import NLU


def language_nlu(intents_dir: Path, code: str, *, clock: Clock | None = None,
                 names: tuple[str, ...] = ()) -> NLU:
    """The NLU for language ``code``; ``names`` are the English intents it must all have (start-up error)."""
    business = localized_business(intents_dir / "business.yaml", code)
    catalog = load_intents(intents_dir / code / "intents.yaml")
    missing = [name for name in names if name not in catalog.names]
    if missing:
        raise ConfigError(f"{catalog.source}: intents missing in {code!r}: {', '.join(missing)} (every intent of "
                          f"{intents_dir / 'intents.yaml'} needs examples in each language)")
    classifier = memo(("classifier", repr(catalog)), lambda: IntentClassifier.train(catalog))
    return NLU(catalog, business, clock=clock, classifier=classifier, reader=fold_accents)

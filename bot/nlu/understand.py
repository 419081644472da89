"""Understanding one message: rules, then the local classifier, plus slots.

This is steps 3 and 4 of the pipeline (compliance and the active flow's
expected answer run before it). The result says where the intent came from
and whether a model step (5) is worth trying: :attr:`Understanding.needs_model`
is True exactly when the intent is ``fallback`` (out of scope, or the
classifier was below its threshold), never for messages resolved here.

Example::

    nlu = NLU.from_dir(Path("intents"), business, clock=clock)
    u = nlu.classify("cn i bk a cleaning 4 tmrw at 3")
    u.intent, u.source, u.entities["datetime"]
    # ("book", "classifier", "2026-03-03T15:00:00-05:00")
    if u.needs_model and model is not None:
        ...  # step 5: ask the model, with u.best as a hint
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from bot.business import Business, load_business
from bot.clock import Clock, SystemClock
from bot.nlu.classifier import IntentClassifier
from bot.nlu.intents import FALLBACK, IntentCatalog, load_intents
from bot.nlu.rules import RuleMatcher
from bot.nlu.slots import Slots, extract_slots
from bot.nlu.text import prepare, respeller

# Twilio's longest message; longer input is cut before classification so
# one pasted essay cannot cost more than a normal message.
MAX_CHARS = 1600
#: The intent a message naming only a service and a day or time is taken as.
BOOK = "book"



def _no_entities() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Understanding:
    """The NLU verdict on one message.

    ``source`` is ``"rule"`` (a pattern or choice matched, confidence 1.0) or
    ``"classifier"``. ``best`` is the classifier's best guess even when it
    fell below the threshold (``intent`` is then ``fallback``); ``rule``
    names the rule that matched. ``slots`` has the typed values behind
    ``entities`` (JSON-ready strings).
    """

    text: str
    intent: str
    confidence: float
    entities: Mapping[str, Any] = field(default_factory=_no_entities)
    source: Literal["rule", "classifier"] = "classifier"
    best: str | None = None
    rule: str | None = None
    slots: Slots = field(default_factory=Slots)

    @property
    def low_confidence(self) -> bool:
        """The classifier had a guess but was below its threshold."""
        return self.source == "classifier" and self.intent == FALLBACK and self.best != FALLBACK

    @property
    def needs_model(self) -> bool:
        """Whether the caller may try the model step (fallback on non-empty text)."""
        return self.intent == FALLBACK and bool(self.text.strip())


def business_words(business: Business) -> list[str]:
    """The business's own words (name, address, services), in-domain for the classifier.

    >>> business_words(business)[:2]  # doctest: +SKIP
    ['Bright Smile Dental', '500 Market St, Springfield']
    """
    names = [name for service in business.services.values() for name in service.names]
    return [business.name, business.address, *names]


def understand(
    text: str,
    *,
    rules: RuleMatcher,
    classifier: IntentClassifier,
    business: Business,
    now: dt.datetime,
    respell: Callable[[str], str] | None = None,
) -> Understanding:
    """Rules first, then the classifier; slots are extracted either way.

    Example::

        u = understand("yes", rules=rules, classifier=clf, business=business, now=now)
        (u.intent, u.source, u.confidence)   # ("affirm", "rule", 1.0)
    """
    text = text[:MAX_CHARS]
    # The business's misspelt words (intents.yaml "spellings") read as meant, by every step below.
    read = respell(text) if respell is not None else text
    slots = extract_slots(read, now=now, business=business)
    entities = MappingProxyType(slots.as_entities())
    prepared = prepare(read)
    if not prepared:
        # Media-only or blank message: nothing to classify, nothing to ask a model.
        return Understanding(text, FALLBACK, 0.0, entities, "rule", None, "empty", slots)
    verdict = rules.match_prepared(prepared)
    if verdict is not None:
        return Understanding(
            text, verdict.intent, verdict.confidence, entities, "rule", verdict.intent, verdict.rule, slots
        )
    prediction = classifier.predict_prepared(prepared)
    if prediction.intent == FALLBACK and slots.service and (slots.date or slots.time) and BOOK in rules.intents:
        # "checkup in two weeks pls": a service and a when, and nothing else understood, is a booking.
        return Understanding(text, BOOK, 1.0, entities, "rule", BOOK, "slots:service+when", slots)
    return Understanding(
        text, prediction.intent, prediction.confidence, entities, "classifier", prediction.best, None, slots
    )


class NLU:
    """Rules + classifier + slot extraction, built once at start-up.

    Example::

        nlu = NLU.from_dir(Path("intents"))          # loads business.yaml too
        nlu.classify("what time do u close sat").intent   # "hours"
        nlu.classify("tomorrow at 3", now=fixed_now).entities["time"]   # "15:00"
    """

    def __init__(
        self,
        catalog: IntentCatalog,
        business: Business,
        *,
        clock: Clock | None = None,
        classifier: IntentClassifier | None = None,
        threshold: float | None = None,
        reader: Callable[[str], str] | None = None,
    ) -> None:
        self.catalog = catalog
        self.business = business
        self.clock: Clock = clock or SystemClock()
        self.rules = RuleMatcher(catalog)
        spell = respeller(catalog.spellings)
        # ``reader`` first (Spanish: accents optional, bot/languages), then the catalog's spellings.
        self.respell = spell if reader is None else (lambda text: spell(reader(text)))
        words = business_words(business)
        if classifier is None:
            classifier = IntentClassifier.train(catalog, threshold=threshold, extra_words=words)
        # A classifier trained elsewhere (and cached across apps) may not know
        # this business's words; without them "is the office in Springfield"
        # would count "springfield" as out of domain.
        self.classifier = classifier.extended(words)
        # dateparser loads its language data on first use (~0.1 s); pay that
        # at start-up, not on the first customer's message.
        extract_slots("tomorrow at 3", now=self.clock.now(), business=business)

    @classmethod
    def from_dir(
        cls, directory: Path, business: Business | None = None, *, clock: Clock | None = None
    ) -> NLU:
        """Load ``intents.yaml`` (and ``business.yaml`` unless given) from ``directory``.

        Example::

            nlu = NLU.from_dir(Path(settings.intents_dir), clock=clock)
        """
        catalog = load_intents(directory / "intents.yaml")
        if business is None:
            business = load_business(directory / "business.yaml")
        return cls(catalog, business, clock=clock)

    def classify(self, text: str, *, now: dt.datetime | None = None) -> Understanding:
        """Understand one message; ``now`` defaults to the clock's time.

        >>> nlu.classify("2").intent  # doctest: +SKIP
        'deny'
        """
        return understand(
            text,
            rules=self.rules,
            classifier=self.classifier,
            business=self.business,
            now=now if now is not None else self.clock.now(),
            respell=self.respell,
        )

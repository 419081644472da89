"""Natural-language understanding: what a message means, offline.

- :mod:`bot.nlu.text`: normalisation and SMS spelling ("cn i bk 4 tmrw").
- :mod:`bot.nlu.intents`: ``intents/intents.yaml`` as typed definitions.
- :mod:`bot.nlu.patterns`: files of regex patterns read and checked at start-up.
- :mod:`bot.nlu.rules`: high-precision patterns and numbered choices.
- :mod:`bot.nlu.classifier`: the local classifier trained at start-up.
- :mod:`bot.nlu.slots`: service, date and time in the business time zone.
- :mod:`bot.nlu.understand`: :class:`NLU`, rules then classifier, plus slots.

Example::

    from bot.nlu import NLU
    nlu = NLU.from_dir(Path("intents"), clock=clock)
    nlu.classify("book a cleaning tomorrow at 3pm")
"""

from __future__ import annotations

from bot.nlu.classifier import IntentClassifier, Prediction
from bot.nlu.intents import FALLBACK, IntentCatalog, IntentDefinition, load_intents
from bot.nlu.rules import RuleMatch, RuleMatcher
from bot.nlu.slots import Slots, extract_slots
from bot.nlu.understand import NLU, Understanding, understand

__all__ = [
    "FALLBACK",
    "NLU",
    "IntentCatalog",
    "IntentClassifier",
    "IntentDefinition",
    "Prediction",
    "RuleMatch",
    "RuleMatcher",
    "Slots",
    "Understanding",
    "extract_slots",
    "load_intents",
    "understand",
]

"""Deterministic rules: the patterns declared with each intent, plus choices.

Rules run before the classifier and win with confidence 1.0, so they must be
high-precision: anchored yes/no words, "talk to a human", "stop texting me".
Everything fuzzier is the classifier's job.

Numbered choices ("1"/"2") mirror how SMS renders two options ("Reply 1 to
confirm, 2 to change"); the active flow reads them first, and outside a flow
they mean affirm/deny.

Example::

    rules = RuleMatcher(load_intents(Path("intents/intents.yaml")))
    rules.match("Yes please!")     # RuleMatch(intent="affirm", confidence=1.0, ...)
    rules.match("2")               # RuleMatch(intent="deny", ...)
    rules.match("when r u open")   # None -> ask the classifier
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from bot.nlu.intents import IntentCatalog
from bot.nlu.text import prepare

#: Default meaning of a bare number outside a flow's own numbered options.
NUMBERED_CHOICES: Mapping[str, str] = MappingProxyType({"1": "affirm", "2": "deny"})
# A bare choice may carry decoration: "1.", "2)", "#1", " 1 ".
_CHOICE = re.compile(r"^#?\s*(\d{1,2})\s*[.)!]?$")


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule's verdict: the intent and which rule said so (for logs)."""

    intent: str
    confidence: float
    rule: str


class RuleMatcher:
    """Match text against every intent's patterns, in file order.

    The first intent (in ``intents.yaml`` order) with a matching pattern wins,
    so more specific intents (``opt_out``, ``human``) are listed first.
    """

    def __init__(
        self,
        catalog: IntentCatalog,
        *,
        numbered_choices: Mapping[str, str] = NUMBERED_CHOICES,
    ) -> None:
        known = set(catalog.names)
        unknown = sorted(set(numbered_choices.values()) - known)
        if unknown:
            raise ValueError(f"numbered choices name unknown intents: {unknown}")
        self._choices = dict(numbered_choices)
        self.intents = frozenset(known)
        self._rules = tuple(
            (definition.name, pattern) for definition in catalog for pattern in definition.patterns
        )

    def match(self, text: str) -> RuleMatch | None:
        """The rule verdict for raw ``text``, or None when no rule applies.

        >>> rules.match("1")  # doctest: +SKIP
        RuleMatch(intent='affirm', confidence=1.0, rule='choice:1')
        """
        return self.match_prepared(prepare(text))

    def match_prepared(self, prepared: str) -> RuleMatch | None:
        """Like :meth:`match` for text already run through :func:`prepare`."""
        choice = _CHOICE.match(prepared)
        if choice is not None:
            intent = self._choices.get(choice.group(1))
            return None if intent is None else RuleMatch(intent, 1.0, f"choice:{choice.group(1)}")
        for intent, pattern in self._rules:
            if pattern.search(prepared):
                return RuleMatch(intent, 1.0, f"{intent}:{pattern.pattern}")
        return None

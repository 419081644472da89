"""Is a model's answer grounded in the business file? Prices, times and services checked.

The model may word an answer freely, but every price, clock time, duration
and service it names must be one the business data holds: the services'
prices and durations, the opening hours, and the rendered FAQ answers. A
service from ``not_offered`` (``intents/business.yaml``) is never grounded.
An answer that fails is discarded by the model step and the offline answer
is sent instead (precision first: a wrong price is worse than "I can't help").

Example::

    facts = grounded_facts(business, ["Payment plans for treatments over $500."])
    ungrounded("A cleaning is $120 and takes 60 minutes.", facts)   # []
    ungrounded("Braces cost $2,000.", facts)                      # ['$2,000', 'braces']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.business import Business

_PRICE = re.compile(
    r"(?:[$€£]\s?\d[\d,]*(?:\.\d{1,2})?)|(?:\b\d[\d,]*(?:\.\d{1,2})?\s?(?:dollars|usd|eur|euros|pounds)\b)", re.I
)
_CLOCK = re.compile(r"\b(\d{1,2})(?::(\d{2}))?\s?(am|pm|a\.m\.|p\.m\.)(?!\w)", re.I)
_DURATION = re.compile(r"\b(\d{1,3})[\s-]?(?:min|mins|minute|minutes|hr|hrs|hour|hours)\b", re.I)


@dataclass(frozen=True, slots=True)
class GroundedFacts:
    """The numbers and names an answer may use."""

    prices: frozenset[str]
    clock_times: frozenset[str]
    durations: frozenset[str]
    not_offered: tuple[str, ...]


def _amount(text: str) -> str:
    digits = re.sub(r"[^\d.]", "", text)
    return digits.removesuffix(".00").rstrip(".")


def _clock(hour: str, minute: str | None, suffix: str) -> str:
    return f"{int(hour)}:{minute or '00'}{suffix.replace('.', '').lower()}"


def grounded_facts(business: Business, texts: Iterable[str] = ()) -> GroundedFacts:
    """What an answer may name: the business file's facts plus those in ``texts`` (FAQ answers)."""
    prices: set[str] = set()
    clocks: set[str] = set()
    durations: set[str] = set()
    sources = list(texts)
    for service in business.services.values():
        prices.add(_amount(str(service.price)))
        durations.add(str(service.duration_minutes))
    for line in business.opening_hours_text():
        sources.append(line.hours)
    for text in sources:
        prices.update(_amount(m.group(0)) for m in _PRICE.finditer(text))
        clocks.update(_clock(*m.groups()) for m in _CLOCK.finditer(text))
        durations.update(m.group(1) for m in _DURATION.finditer(text))
    return GroundedFacts(frozenset(prices), frozenset(clocks), frozenset(durations), business.not_offered)


def ungrounded(answer: str, facts: GroundedFacts) -> list[str]:
    """The prices, times and services in ``answer`` the business data does not hold (empty: grounded)."""
    found = [m.group(0) for m in _PRICE.finditer(answer) if _amount(m.group(0)) not in facts.prices]
    found += [m.group(0) for m in _CLOCK.finditer(answer) if _clock(*m.groups()) not in facts.clock_times]
    found += [m.group(0) for m in _DURATION.finditer(answer) if m.group(1) not in facts.durations]
    lowered = answer.lower()
    found += [name for name in facts.not_offered if re.search(rf"\b{re.escape(name.lower())}\b", lowered)]
    return found

"""Safety and feelings first: emergencies and complaints, before any intent.

The words live in ``intents/safety.yaml`` (regexes per kind, English and
Spanish); this module loads them, checks each message and says which kind
and rule matched. The brain answers a match at once (the clinic's phone, the
emergency number when breathing or swallowing is affected, an apology for a
complaint) and hands the conversation to staff.

Compliance runs before this (bot/engine.py): a single-word STOP is an opt-out,
but "I can't stop the bleeding" is not a revocation and reaches this check.

Example::

    safety = load_safety(Path("intents/safety.yaml"))
    safety.check("my tooth is bleeding a lot and my face is swelling up")
    # SafetyMatch(kind='emergency', rule='bleeding')
    safety.check("how much is a cleaning?")  # None
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.nlu.patterns import check_patterns, load_pattern_file
from bot.nlu.text import prepare

SafetyKind = Literal["emergency", "complaint"]
#: The order kinds are tried in: an emergency wins over a complaint in one message.
KIND_ORDER: tuple[SafetyKind, ...] = ("emergency", "complaint")


@dataclass(frozen=True, slots=True)
class SafetyMatch:
    """Which kind of message this is and the rule (from ``safety.yaml``) that said so."""

    kind: SafetyKind
    rule: str
    reply: str
    staff_notice: str


class _Kind(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    reply: str = Field(min_length=1)
    staff_notice: str = Field(min_length=1)
    rules: dict[str, str] = Field(min_length=1)

    _check = field_validator("rules")(classmethod(lambda cls, v: check_patterns(v)))


class _SafetyFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: Literal[1] = 1
    emergency_number: str = Field(min_length=1)
    kinds: dict[SafetyKind, _Kind]


class SafetyRules:
    """The compiled safety rules; :meth:`check` says whether a message needs care first.

    Example::

        rules.check("the pain wont stop since my filling last week").rule  # 'lasting_pain'
        rules.emergency_number                                             # '911'
    """

    def __init__(self, data: _SafetyFile) -> None:
        self.emergency_number = data.emergency_number
        self._kinds: list[tuple[SafetyKind, _Kind, list[tuple[str, re.Pattern[str]]]]] = [
            (kind, spec, [(name, re.compile(pattern)) for name, pattern in spec.rules.items()])
            for kind in KIND_ORDER
            if (spec := data.kinds.get(kind)) is not None
        ]

    def check(self, text: str) -> SafetyMatch | None:
        """The first matching kind (emergency before complaint) and rule, or None."""
        prepared = prepare(text)
        if not prepared:
            return None
        for kind, spec, rules in self._kinds:
            for name, pattern in rules:
                if pattern.search(prepared):
                    return SafetyMatch(kind, name, spec.reply, spec.staff_notice)
        return None

    @property
    def templates(self) -> frozenset[str]:
        """Every reply and staff-notice template the rules name (checked at start-up)."""
        return frozenset(name for _, spec, _ in self._kinds for name in (spec.reply, spec.staff_notice))


def load_safety(path: Path) -> SafetyRules:
    """Load ``intents/safety.yaml``; a bad file is a :class:`ConfigError` naming the field."""
    return SafetyRules(load_pattern_file(path, _SafetyFile))

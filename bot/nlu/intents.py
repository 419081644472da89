"""Intent definitions: ``intents/intents.yaml`` loaded into typed, frozen values.

The file declares each intent's example utterances (training data for the
classifier) and optional regex ``patterns`` (high-precision rules, matched
against :func:`bot.nlu.text.prepare`-d text). Loading validates everything at
start-up: unknown keys, bad regexes, an example listed under two intents or a
missing ``fallback`` intent each raise :class:`~bot.errors.ConfigError` naming
the file and the key.

Example::

    catalog = load_intents(Path("intents/intents.yaml"))
    catalog.names[:3]               # ("opt_out", "opt_in", "greet") - file order
    catalog["hours"].examples[0]    # "what are your hours"
    catalog.threshold               # 0.35
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.datafile import read_yaml_mapping
from bot.errors import ConfigError
from bot.nlu.patterns import check_patterns, parse_pattern_data
from bot.nlu.text import prepare

#: The intent the classifier answers when nothing else fits.
FALLBACK = "fallback"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class IntentDefinition:
    """One intent: its name, training examples and compiled rule patterns."""

    name: str
    description: str
    examples: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]


@dataclass(frozen=True, slots=True)
class IntentCatalog:
    """Every intent, in file order (which is also the rule priority order).

    ``threshold`` is the classifier's minimum confidence; below it the answer
    is :data:`FALLBACK`. See :class:`bot.nlu.classifier.DomainVocabulary` for
    the unknown-words settings.
    """

    intents: tuple[IntentDefinition, ...]
    threshold: float
    source: Path | None = None
    # A prediction with at least ``unknown_words`` out-of-domain words and a
    # confidence under ``unknown_words_max_confidence`` becomes fallback.
    unknown_words: int = 2
    unknown_words_max_confidence: float = 0.8
    # The business's own words as people misspell them ("dentst" -> "dentist"), read as the word.
    spellings: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.intents)

    def __getitem__(self, name: str) -> IntentDefinition:
        for definition in self.intents:
            if definition.name == name:
                return definition
        raise KeyError(name)

    def __iter__(self) -> Iterator[IntentDefinition]:
        return iter(self.intents)

    def __len__(self) -> int:
        return len(self.intents)


# -- the file's schema ------------------------------------------------------


class _IntentSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    description: str = ""
    examples: tuple[str, ...] = Field(min_length=1)
    patterns: tuple[str, ...] = ()

    @field_validator("examples")
    @classmethod
    def _examples(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not text.strip() for text in value):
            raise ValueError("examples must not be empty strings")
        return value

    _check = field_validator("patterns")(classmethod(lambda cls, v: check_patterns(v)))


class _ClassifierSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float = Field(default=0.4, ge=0.0, le=1.0)
    unknown_words: int = Field(default=2, ge=0)
    unknown_words_max_confidence: float = Field(default=0.8, ge=0.0, le=1.0)


class _IntentsFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(default=1, ge=1, le=1)
    classifier: _ClassifierSpec = _ClassifierSpec()
    spellings: dict[str, str] = {}
    intents: dict[str, _IntentSpec] = Field(min_length=2)

    @field_validator("spellings")
    @classmethod
    def _spellings(cls, value: dict[str, str]) -> dict[str, str]:
        for wrong, right in value.items():
            if not re.fullmatch(r"[a-z0-9'ñ]+", wrong) or not right.strip():
                raise ValueError(f"spelling {wrong!r}: write one lower-case word and the word it means")
        return value

    @field_validator("intents")
    @classmethod
    def _names(cls, value: dict[str, _IntentSpec]) -> dict[str, _IntentSpec]:
        for name in value:
            if not _NAME.match(name):
                raise ValueError(f"intent name {name!r} must be lower_snake_case")
        if FALLBACK not in value:
            raise ValueError(f"a {FALLBACK!r} intent with out-of-scope examples is required")
        return value

    @model_validator(mode="after")
    def _no_conflicting_examples(self) -> _IntentsFile:
        # The same text under two intents teaches the classifier a coin
        # toss; compare prepared forms so "Thx!" and "thanks!" collide too.
        owner: dict[str, str] = {}
        for name, spec in self.intents.items():
            for text in spec.examples:
                key = prepare(text)
                other = owner.setdefault(key, name)
                if other != name:
                    raise ValueError(f"example {text!r} is listed under both {other!r} and {name!r}")
        return self


def parse_intents(data: Mapping[str, Any], *, source: Path) -> IntentCatalog:
    """Validate already-read YAML ``data``; ``source`` names the file in errors.

    Example::

        parse_intents({"intents": {...}}, source=Path("inline"))
    """
    spec = parse_pattern_data(data, _IntentsFile, source=source)
    intents = tuple(
        IntentDefinition(
            name=name,
            description=item.description,
            examples=item.examples,
            patterns=tuple(re.compile(p, re.IGNORECASE) for p in item.patterns),
        )
        for name, item in spec.intents.items()
    )
    return IntentCatalog(
        intents=intents,
        threshold=spec.classifier.threshold,
        source=source,
        unknown_words=spec.classifier.unknown_words,
        unknown_words_max_confidence=spec.classifier.unknown_words_max_confidence,
        spellings=tuple(spec.spellings.items()),
    )


def load_intents(path: Path) -> IntentCatalog:
    """Load and validate ``intents.yaml``.

    Raises :class:`ConfigError` naming the file and the bad key, e.g.
    ``intents/intents.yaml: invalid data: intents.greet.exampels: unknown key``.

    Example::

        catalog = load_intents(Path("intents/intents.yaml"))
        len(catalog["greet"].examples)  # 31
    """
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    return parse_intents(read_yaml_mapping(path), source=path)

"""The business in another language: ``intents/<code>/business.yaml`` over ``intents/business.yaml``.

The business's own file holds the facts (hours, prices, durations, address)
and its English words; a language's file holds only the words: each
service's ``label`` and ``aliases`` and the whole ``faq`` (questions as
people ask them in that language, answers as templates). Every service and
every FAQ entry must be translated: a missing one is a start-up error naming
it. The view keeps the English names as aliases too ("quiero un cleaning").

Example (``intents/es/business.yaml``)::

    services:
      cleaning: {label: Limpieza, aliases: [limpieza dental, limpiesa]}
    faq:
      duration:
        questions: [cuanto dura una limpieza]
        answer: "Una {{ service.label | lower }} dura unos {{ service.duration_minutes }} minutos."

    es = localized_business(Path("intents/business.yaml"), "es")
    es.service("limpiesa").key    # 'cleaning'
    es.language                   # 'es'
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.business import Business, FaqEntry
from bot.datafile import read_yaml_mapping, validation_problems
from bot.errors import ConfigError
from bot.languages.slot_words import SLOT_READERS


class _ServiceWords(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()


class _LanguageFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    services: Mapping[str, _ServiceWords]
    faq: Mapping[str, FaqEntry] = Field(default_factory=dict)
    not_offered: tuple[str, ...] = ()


def language_file(business_path: Path, code: str) -> Path:
    """Where language ``code``'s words for the business live: ``intents/<code>/business.yaml``."""
    return business_path.parent / code / "business.yaml"


def localized_business(business_path: Path, code: str) -> Business:
    """The business of ``business_path`` in language ``code`` (see the module docstring).

    Raises :class:`ConfigError` naming the language file and what is missing.
    """
    path = language_file(business_path, code)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; the business answers in {code!r} (languages: in "
                          f"{business_path}), so its service names and FAQ need a translation there")
    base = read_yaml_mapping(business_path)
    try:
        words = _LanguageFile.model_validate(read_yaml_mapping(path))
    except ValidationError as exc:
        raise validation_problems(path, exc) from None
    services: dict[str, Any] = dict(base.get("services") or {})
    problems = [f"services.{key}: missing (every service needs its {code!r} label)"
                for key in services if key not in words.services]
    problems += [f"services.{key}: not a service of {business_path}" for key in words.services if key not in services]
    faq = dict(base.get("faq") or {})
    problems += [f"faq.{key}: missing (every FAQ entry needs its {code!r} questions and answer)"
                 for key in faq if key not in words.faq]
    problems += [f"faq.{key}: not an FAQ entry of {business_path}" for key in words.faq if key not in faq]
    if problems:
        raise ConfigError(f"{path}: invalid data:\n  " + "\n  ".join(problems))
    for key, spec in services.items():
        own = words.services[key]
        english = [spec.get("label", key), *(spec.get("aliases") or ())] if isinstance(spec, dict) else []
        aliases = list(dict.fromkeys([*own.aliases, *english]))
        services[key] = {**spec, "label": own.label, "aliases": aliases}
    data = {
        **base,
        "services": services,
        "faq": {key: entry.model_dump(exclude_none=True) for key, entry in words.faq.items()},
        "not_offered": [*base.get("not_offered", ()), *words.not_offered],
    }
    try:
        business = Business.model_validate(data)
    except ValidationError as exc:
        raise validation_problems(path, exc) from None
    return business.speaking(code, SLOT_READERS.get(code))

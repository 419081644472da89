"""Short first messages that can only be one language: "hola", "buenas", "buenos dias".

The detector (:mod:`bot.languages.detect`) never decides on one word, and is
not sure of a two-word greeting, so "hola" alone would start an English
conversation. Each language may list its unambiguous openers in
``intents/<code>/openers.yaml``; they set the language of a NEW conversation
only (:meth:`bot.languages.choose.Languages.choose`), never switch one that
has a language.

Read lower case, without accents or punctuation, and with letters said twice
read once ("Holaaa!!" = "hola", "buenos días" = "buenos dias").

Example::

    openers = load_openers(Path("intents"), ("es",))
    openers.language_of("Holaa!")     # 'es'
    openers.language_of("ok")         # None
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.datafile import read_yaml_mapping, validation_problems
from bot.languages.profile import fold_accents

_NOT_LETTERS = re.compile(r"[^\w\s]|\d|_")
_TWICE = re.compile(r"(\w)\1+")


def opener_key(text: str) -> str:
    """How an opener is compared: ``"¡Holaa, buenos días!"`` -> ``'hola buenos dias'``.

    >>> opener_key("¡Holaa!! 👋")
    'hola'
    """
    bare = _NOT_LETTERS.sub(" ", fold_accents(text))
    return " ".join(_TWICE.sub(r"\1", bare).split())


class _OpenersFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    openers: tuple[str, ...] = ()


def _no_openers() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Openers:
    """Each language's unambiguous first messages, by :func:`opener_key`."""

    languages: Mapping[str, str] = field(default_factory=_no_openers)

    def language_of(self, text: str) -> str | None:
        """The language ``text`` can only be in when it is an opener, else None.

        >>> Openers(MappingProxyType({"hola": "es"})).language_of("HOLA!")
        'es'
        """
        return self.languages.get(opener_key(text)) if text else None


def load_openers(intents_dir: Path, codes: Iterable[str]) -> Openers:
    """The openers of languages ``codes`` (``intents/<code>/openers.yaml``; a missing file: none).

    Raises :class:`ConfigError` naming the file when it is malformed.
    """
    found: dict[str, str] = {}
    for code in codes:
        path = intents_dir / code / "openers.yaml"
        if not path.is_file():
            continue
        try:
            words = _OpenersFile.model_validate(read_yaml_mapping(path))
        except ValidationError as exc:
            raise validation_problems(path, exc) from None
        found.update((opener_key(word), code) for word in words.openers)
    return Openers(MappingProxyType(found))

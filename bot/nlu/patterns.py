"""Files of regex patterns (intents, safety words, reminder answers): read, checked, or a start-up error.

Each file is YAML whose shape is a pydantic model of its own; the patterns in
it are checked when it loads (:func:`check_patterns` in the model's field
validator), so a typo stops start-up with a :class:`~bot.errors.ConfigError`
naming the file, the field and the pattern, never a crash on the first
message that reaches it.

Example::

    class _Words(BaseModel):
        confirm: list[str]
        _check = field_validator("confirm")(classmethod(lambda cls, v: check_patterns(v)))

    words = load_pattern_file(Path("intents/words.yaml"), _Words)
    # intents/words.yaml: invalid data:
    #   confirm: invalid regex '^(y': missing ), unterminated subpattern at position 1
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot.datafile import read_yaml_mapping, validation_problems

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P", bound=Iterable[str])


def check_patterns(patterns: P) -> P:
    """``patterns`` unchanged when each compiles; a ValueError naming the first that does not.

    A mapping's values are its patterns and its keys their names ("rule 'bleeding': invalid regex ...").

    >>> check_patterns(["^c$", "^(yes|ok)$"])
    ['^c$', '^(yes|ok)$']
    """
    named = patterns.items() if isinstance(patterns, Mapping) else ((None, p) for p in patterns)
    for name, pattern in named:
        try:
            re.compile(pattern)
        except re.error as exc:
            where = "" if name is None else f"rule {name!r}: "
            raise ValueError(f"{where}invalid regex {pattern!r}: {exc}") from None
    return patterns


def parse_pattern_data(data: Mapping[str, Any], model: type[M], *, source: Path) -> M:
    """``data`` (YAML already read) as ``model``; a ConfigError naming ``source`` and the bad fields."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_problems(source, exc) from None


def load_pattern_file(path: Path, model: type[M]) -> M:
    """Read the YAML file ``path`` as ``model``; a ConfigError naming the file and the bad fields."""
    return parse_pattern_data(read_yaml_mapping(path), model, source=path)

"""The keypad menu read after a call's greeting, as data (``intents/voice.yaml``).

Each key has a ``label`` (spoken: "To book an appointment, press 1.") and
``says``: the words the key stands for, understood like speech. The menu
applies to the caller's first answer only; after that, keys pick the
options just offered.

Example::

    menu = KeypadMenu.load(Path("intents/voice.yaml"))
    menu.spoken()        # 'To book an appointment, press 1. ... To talk to a person, press 0.'
    menu.means("1")      # 'I want to book an appointment'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import ConfigError


class _Key(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(min_length=1)
    says: str = Field(min_length=1)


class _File(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    menu: dict[str, _Key] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeypadMenu:
    """Keys (``"1"`` ... ``"9"``, ``"0"``) to what they mean."""

    keys: Mapping[str, tuple[str, str]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def load(cls, path: Path) -> KeypadMenu:
        """The menu in ``path``; no file means no menu. A bad file is a :class:`ConfigError`."""
        if not path.exists():
            return cls()
        try:
            data = _File.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        bad = [key for key in data.menu if not (len(key) == 1 and key.isdigit())]
        if bad:
            raise ConfigError(f"{path}: menu keys must be single digits, got {', '.join(map(repr, bad))}")
        return cls(MappingProxyType({k: (v.label, v.says) for k, v in data.menu.items()}))

    def spoken(self) -> str:
        """The menu as sentences, 0 last ("To talk to a person, press 0.")."""
        order = sorted(self.keys, key=lambda k: (k == "0", k))
        return " ".join(f"{self.keys[k][0][:1].upper()}{self.keys[k][0][1:]}, press {k}." for k in order)

    def means(self, key: str) -> str | None:
        """What pressing ``key`` says, or None when the key is not on the menu."""
        entry = self.keys.get(key)
        return None if entry is None else entry[1]

"""Offered options: remembered in the state, picked by number, ordinal or content.

Every numbered list the bot sends (services, times, alternatives,
appointments, Yes/No) is kept in ``state.data["choices"]`` together with the
flow step it was offered at and what each option stands for (a service, a
start time). While the conversation stays at that step, the next message may
pick one:

- by number or title: ``2``, ``#2``, ``2.``, ``Yes``, a WhatsApp button;
- by ordinal: ``the first one``, ``2nd``, ``the last one``, ``option 3``;
- by content: ``the 9am``, ``10:30 works``, ``the cleaning one``,
  ``the friday one`` (every service, weekday, date and time the message
  names must fit the option);
- ``ok`` / ``yes`` right after a single offered option takes it.

When several options fit ("the cleaning one" with two cleanings, "yes" after
a list of two), :attr:`Pick.among` holds them and the flow asks which, briefly.

Example::

    offered = [Offered("at:2026-03-09T08:00:00-04:00", "Mon, Mar 9 at 8:00 AM", at=...), ...]
    pick("the first one", offered, slots).chosen.payload   # "at:2026-03-09T08:00:00-04:00"
    pick("the 9am", offered, slots).chosen                 # the 9:00 option
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.messages import Choice
from bot.nlu.slots import Slots, weekday_named
from bot.sms.render import pick_choice

_ORDINALS: Mapping[str, int] = {
    "first": 1, "1st": 1, "one": 1, "second": 2, "2nd": 2, "two": 2, "third": 3, "3rd": 3, "three": 3,
    "fourth": 4, "4th": 4, "four": 4, "fifth": 5, "5th": 5, "five": 5, "last": -1, "latter": -1, "former": 1,
}
# A short message that is only an ordinal: "the first one", "2nd pls", "option 3", "ok the last one".
_ORDINAL = re.compile(
    r"^(?:(?:ok|okay|yes|yeah|yep|sure|um|uh|i'?ll take|i will take|take|let'?s do|lets do|go with|"
    r"i'?ll go with|i want|gimme|give me|book|pick|the|that|option|number|no\.|#)\s*)*"
    r"(?P<n>first|1st|second|2nd|third|3rd|fourth|4th|fifth|5th|last|latter|former|one|two|three|four|five|\d)"
    r"(?:\s*(?:one|option|time|slot|choice|appointment|appt|please|pls|plz|thanks|thx|works|is fine|is good|"
    r"sounds good|then|for me|is best))*[\s.!]*$"
)
_AFFIRM = re.compile(r"^(?:ok|okay|k|kk|yes|yeah|yep|yup|sure|fine|perfect|great|sounds good|that works|"
                     r"works for me|that one|ok that one|yes please|ok thanks?|ok great)[\s.!]*$")
_CLEAN = re.compile(r"[^\w\s#:.']")


@dataclass(frozen=True, slots=True)
class Offered:
    """One option offered to the user: its payload and title, and what it stands for."""

    payload: str
    title: str
    service: str | None = None
    at: datetime | None = None

    @property
    def choice(self) -> Choice:
        return Choice(self.payload, self.title)

    def dump(self) -> list[Any]:
        return [self.payload, self.title, self.service, self.at.isoformat() if self.at else None]

    @classmethod
    def load(cls, item: Sequence[Any]) -> Offered:
        payload, title, *rest = item
        service = rest[0] if rest else None
        at = datetime.fromisoformat(rest[1]) if len(rest) > 1 and rest[1] else None
        return cls(str(payload), str(title), service, at)


def remember(data: dict[str, Any], offered: Sequence[Offered], where: str) -> None:
    """Keep ``offered`` in the conversation data, as offered at step ``where``."""
    data["choices"] = {"where": where, "items": [o.dump() for o in offered]}


def recall(data: Mapping[str, Any], where: str) -> list[Offered]:
    """The options offered at step ``where`` (empty when the conversation moved on)."""
    kept = data.get("choices")
    if isinstance(kept, list):  # the older form: a list of [payload, title], one turn long
        return [Offered.load(item) for item in kept]
    if not isinstance(kept, dict) or kept.get("where") != where:
        return []
    return [Offered.load(item) for item in kept.get("items", [])]


@dataclass(frozen=True, slots=True)
class Pick:
    """What a message picked: one option, several that fit (ask which), or nothing."""

    chosen: Offered | None = None
    among: tuple[Offered, ...] = ()


def pick(text: str, offered: Sequence[Offered], slots: Slots) -> Pick:
    """The option ``text`` picks from ``offered``; ``slots`` is what NLU read in it.

    >>> o = [Offered("yes", "Yes"), Offered("no", "No")]
    >>> pick("2", o, Slots()).chosen.payload
    'no'
    """
    if not offered:
        return Pick()
    exact = pick_choice(text, [o.choice for o in offered])
    if exact is not None:
        return Pick(next(o for o in offered if o.payload == exact.payload))
    clean = " ".join(_CLEAN.sub(" ", text.lower()).split())
    ordinal = _ORDINAL.match(clean)
    if ordinal is not None:
        index = _ORDINALS.get(ordinal.group("n"), 0) or (int(ordinal.group("n")) if ordinal.group("n").isdigit() else 0)
        if index == -1:
            return Pick(offered[-1])
        if 1 <= index <= len(offered):
            return Pick(offered[index - 1])
    fitting = _by_content(clean, offered, slots)
    if fitting is not None:
        return Pick(fitting[0]) if len(fitting) == 1 else Pick(among=tuple(fitting))
    if _AFFIRM.match(clean) and not _is_yes_no(offered):
        return Pick(offered[0]) if len(offered) == 1 else Pick(among=tuple(offered))
    return Pick()


def _is_yes_no(offered: Sequence[Offered]) -> bool:
    return {o.payload for o in offered} <= {"yes", "no"}


def _by_content(text: str, offered: Sequence[Offered], slots: Slots) -> list[Offered] | None:
    """The options every named fact fits (None when the message names none)."""
    weekday = weekday_named(text)
    bare = re.fullmatch(r"(?:the |at |ok |@ )*(\d{1,2})(?::(\d\d))?(?: ?(?:one|o'?clock|works|pls|please))*", text)
    wanted_time = slots.time if slots.time is not None and not slots.approximate else None
    facts = (slots.service, slots.date if weekday is None else None, weekday, wanted_time, bare)
    if all(f is None for f in facts):
        return None
    fitting = []
    for option in offered:
        at = option.at
        if slots.service is not None and option.service != slots.service:
            continue
        if (slots.service is None) and option.service is None and at is None:
            continue
        if weekday is not None and (at is None or at.weekday() != weekday):
            continue
        if weekday is None and slots.date is not None and (at is None or at.date() != slots.date):
            continue
        if wanted_time is not None and (at is None or (at.hour, at.minute) != (wanted_time.hour, wanted_time.minute)):
            continue
        if wanted_time is None and bare is not None:
            hour, minute = int(bare.group(1)), int(bare.group(2) or 0)
            if at is None or (at.hour % 12, at.minute) != (hour % 12, minute):
                continue
        fitting.append(option)
    return fitting or None

"""What a caller said or pressed, as the text one engine turn reads.

Twilio's ``<Gather input="speech dtmf">`` posts ``SpeechResult`` and
``Confidence`` for speech, or ``Digits`` for the keypad. Keys become the
text a texter would have sent: a digit picks the numbered option of that
number (``1`` = yes, ``2`` = no at a yes/no question, as on SMS), ``0``
asks for a person. Speech below the confidence threshold is not used
silently: :meth:`Heard.needs_confirming` tells the adapter to ask "did you
say ...?" first.

Example::

    heard = Heard.from_fields(speech="book a cleaning", confidence="0.91", digits=None)
    heard.text, heard.needs_confirming(0.5)   # ('book a cleaning', False)
    Heard.from_fields(speech=None, confidence=None, digits="0").text   # 'agent'
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

#: Keys with a meaning of their own besides picking numbered options.
KEYPAD_WORDS: Final = {"0": "agent"}
_YES: Final = re.compile(
    r"^(yes|yeah|yep|yup|sure|correct|right|that's right|that is right|exactly|ok|okay|uh huh)\b", re.I
)
_NO: Final = re.compile(r"^(no|nope|nah|wrong|not really|that's wrong|that is wrong|incorrect)\b", re.I)


@dataclass(frozen=True, slots=True)
class Heard:
    """One Gather result: the text for the engine, and how sure the recogniser was."""

    text: str
    confidence: float | None = None
    keypad: bool = False

    @classmethod
    def from_fields(cls, *, speech: str | None, confidence: str | None, digits: str | None) -> Heard:
        """From Twilio's fields; keys win over speech (a key press is unambiguous)."""
        keys = (digits or "").strip()
        if keys:
            return cls(text=KEYPAD_WORDS.get(keys, keys), keypad=True)
        said = " ".join((speech or "").split())
        return cls(text=said, confidence=_confidence(confidence) if said else None)

    def needs_confirming(self, threshold: float) -> bool:
        """Speech heard with less than ``threshold`` confidence (Twilio sends 0..1)."""
        return not self.keypad and self.confidence is not None and self.confidence < threshold

    def yes_no(self) -> bool | None:
        """True for "yes" / key 1, False for "no" / key 2, None otherwise.

        >>> Heard("Yeah, that's right.").yes_no(), Heard("2", keypad=True).yes_no()
        (True, False)
        """
        if self.keypad:
            return {"1": True, "2": False}.get(self.text)
        text = self.text.strip().strip(".!?").strip()
        if _YES.match(text):
            return True
        if _NO.match(text):
            return False
        return None


def _confidence(raw: str | None) -> float | None:
    # Twilio sends "0.87"; some carriers' results come without one (treat as sure).
    try:
        value = float(raw) if raw else None
    except ValueError:
        return None
    if value is None or not math.isfinite(value):
        return None
    return min(max(value, 0.0), 1.0)

"""Smart Encoding: replace look-alike characters so a reply can be GSM-7.

One curly quote or em dash turns a whole SMS into UCS-2, which cuts a
segment from 160 to 70 characters and can double the price. Twilio's
"Smart Encoding" fixes this on its side when it is switched on; we do it
ourselves before sending, so the segment count we log is the one billed
whatever the Messaging Service settings are.

All or nothing: the replacements are applied only when the result is
GSM-7. A reply that stays UCS-2 anyway (emoji, Chinese, Cyrillic) is
returned untouched: there, typography costs nothing extra ("…" is one unit,
"..." three) and joiners such as ZWJ hold emoji sequences together.

Choices that differ from Twilio's calculator (documented in FACTS.md):
- NBSP, the other Unicode spaces and a tab become ONE space, not two (or
  seven for a tab): the author meant one space, and more cost septets.
- Line and paragraph separators become ``\\n`` rather than a space.
- ‹ › map to < > (the calculator has them swapped); ‚ is a quote, so "'".
- A vulgar fraction right after a digit gets a space: "1½" → "1 1/2", not
  "11/2".
- Text is NFC-composed first, so "e" + combining acute becomes "é" (GSM).
  Letters with no GSM form (á, ç, ő) are never transliterated.

Example::

    >>> normalize("We’re open 9–5… see you!")
    "We're open 9-5... see you!"
    >>> normalize("“Hi” 🙂")  # stays UCS-2 anyway: untouched
    '“Hi” 🙂'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from bot.sms.segments import is_gsm7

_FRACTIONS: Final = {
    "¼": "1/4",
    "½": "1/2",
    "¾": "3/4",
    "⅓": "1/3",
    "⅔": "2/3",
    "⅛": "1/8",
    "⅜": "3/8",
    "⅝": "5/8",
    "⅞": "7/8",
}

# Controls that are GSM-7 (\n \r \f) or get a mapping below (\t, NEL).
_KEPT: Final = "\t\n\r\f\x85"

_LOOK_ALIKES: Final[dict[str, str]] = {
    **dict.fromkeys("«»“”„‟″‶❝❞〝〞ʺˮ", '"'),
    **dict.fromkeys("‘’‚‛′‵´`ʹʻʼʽˈˊˋ❛❜", "'"),
    # Hyphen, non-breaking hyphen, figure/en/em dash, bar, minus sign, ...
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63", "-"),
    # Bullets read as list dashes in plain text.
    **dict.fromkeys("•‣◦∙⁃", "-"),
    "…": "...",
    "‼": "!!",
    "‹": "<",
    "›": ">",
    "÷": "/",
    "⁄": "/",
    "∕": "/",
    "×": "x",
    **_FRACTIONS,
    # NBSP, Ogham space mark, en quad .. hair space, narrow NBSP, math space,
    # ideographic space, and the tab: one ASCII space each.
    **dict.fromkeys("\u00a0\u1680\u202f\u205f\u3000\t", " "),
    **{chr(c): " " for c in range(0x2000, 0x200B)},
    **dict.fromkeys("\u2028\u2029\u0085", "\n"),
    # Invisible: zero-width space/non-joiner/joiner, word joiner, BOM, soft
    # hyphen, variation selectors. Safe to drop because the all-or-nothing
    # rule only keeps the result when no emoji or complex script remains.
    **dict.fromkeys("\u200b\u200c\u200d\u2060\ufeff\u00ad\ufe0e\ufe0f", ""),
    # Control characters other than \n \r \f (which GSM-7 has) are noise.
    **{chr(c): "" for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)) if chr(c) not in _KEPT},
    # Full-width ASCII (U+FF01..U+FF5E) sits 0xFEE0 above the ASCII original.
    **{chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)},
}

_TABLE: Final[Mapping[int, str]] = MappingProxyType({ord(k): v for k, v in _LOOK_ALIKES.items()})
_FRACTION_AFTER_DIGIT: Final = re.compile(rf"(?<=\d)(?=[{''.join(_FRACTIONS)}])")


def normalize(text: str) -> str:
    """Return ``text`` with look-alikes replaced, if that makes it GSM-7.

    Otherwise (real emoji or non-Latin text remains) ``text`` comes back
    unchanged. Idempotent: ``normalize(normalize(t)) == normalize(t)``.

    Example::

        >>> normalize("Tue\u00a09:00 — ½ hour • ＯＫ")
        'Tue 9:00 - 1/2 hour - OK'
        >>> normalize("预约 “明天”")
        '预约 “明天”'
    """
    if is_gsm7(text):
        return text
    candidate = unicodedata.normalize("NFC", text)
    candidate = _FRACTION_AFTER_DIGIT.sub(" ", candidate)
    candidate = candidate.translate(_TABLE)
    return candidate if is_gsm7(candidate) else text

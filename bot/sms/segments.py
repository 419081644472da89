"""Count SMS segments the way Twilio bills them.

A message is GSM-7 when every character is in the GSM 03.38 basic set or its
extension table, otherwise UCS-2 (one emoji is enough). GSM-7 fits 160
septets in a single segment and 153 per segment once split (the rest is the
concatenation header); UCS-2 fits 70 UTF-16 code units, 67 per segment.
The rules and the character table follow Twilio's open-source
message-segment-calculator (TwilioDevEd), see ``shared/twilio/FACTS.md``.

Example::

    >>> count_segments("Your cleaning is booked.")
    SegmentCount(encoding='GSM-7', segments=1, units=24, characters=24)
    >>> count_segments("x" * 161).segments
    2
    >>> count_segments("See you soon 🙂").encoding
    'UCS-2'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

# `regex` (a dependency of dateparser) implements Unicode grapheme clusters
# (``\X``); the stdlib `re` does not. It ships without type information.
import regex  # type: ignore[import-untyped,unused-ignore]

Encoding = Literal["GSM-7", "UCS-2"]

#: Twilio refuses longer bodies on every channel (error 21617).
MAX_BODY_CHARS: Final = 1600

GSM7_SINGLE: Final = 160
GSM7_PER_SEGMENT: Final = 153
UCS2_SINGLE: Final = 70
UCS2_PER_SEGMENT: Final = 67

#: GSM 03.38 basic character set, one septet each. The escape (0x1B) is left
#: out on purpose: it only introduces the extension table. Position 0x09 is
#: the capital Ç (as Twilio maps it); lowercase ç and the backtick are not GSM.
GSM7_BASIC: Final = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: escape + character, so two septets each.
GSM7_EXTENSION: Final = frozenset("\f[\\]^{|}~€")
GSM7_CHARACTERS: Final = GSM7_BASIC | GSM7_EXTENSION

_GRAPHEME = regex.compile(r"\X")


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """How a text travels as SMS.

    ``units`` are septets for GSM-7 (extension characters count 2) and UTF-16
    code units for UCS-2 (most emoji count 2). ``characters`` are
    user-perceived characters (grapheme clusters; ``\\r\\n`` counts as two,
    as in Twilio's calculator). Empty text is ``segments=0``: nothing is sent
    as SMS (Twilio refuses an empty body without media, and a media-only
    message is MMS, billed per message), so summing counts stays honest.

    Example::

        >>> count_segments("{}")
        SegmentCount(encoding='GSM-7', segments=1, units=4, characters=2)
    """

    encoding: Encoding
    segments: int
    units: int
    characters: int


def is_gsm7(text: str) -> bool:
    """True when ``text`` can be sent in the GSM-7 alphabet.

    Example::

        >>> is_gsm7("Café {ok}"), is_gsm7("façade"), is_gsm7("hi 🙂")
        (True, False, False)
    """
    return GSM7_CHARACTERS.issuperset(text)  # a set operation in C: every reply is checked


def split_graphemes(text: str) -> list[str]:
    """Split ``text`` into user-perceived characters (grapheme clusters).

    ``\\r\\n`` is returned as two items, matching Twilio's calculator.

    Example::

        >>> split_graphemes("ok 👍🏽\\r\\n")
        ['o', 'k', ' ', '👍🏽', '\\r', '\\n']
    """
    if is_gsm7(text):
        # Fast path for the usual reply: GSM characters never combine.
        return list(text)
    found: list[str] = _GRAPHEME.findall(text)
    if "\r\n" not in found:
        return found
    return [part for cluster in found for part in (cluster if cluster == "\r\n" else [cluster])]


def utf16_length(text: str) -> int:
    """Length in UTF-16 code units (what UCS-2 segments and JavaScript count).

    Example::

        >>> len("🙂"), utf16_length("🙂")
        (1, 2)
    """
    return len(text.encode("utf-16-le")) // 2


def body_length(text: str) -> int:
    """Length of a message body as measured against :data:`MAX_BODY_CHARS`.

    Twilio does not say whether its 1600 "characters" are code points or
    UTF-16 code units; we count UTF-16 units, the larger of the two, so a
    body we accept is never refused (21617). For GSM-7 text both agree.

    Example::

        >>> body_length("hi"), body_length("hi 🙂")
        (2, 5)
    """
    return utf16_length(text)


def count_segments(text: str) -> SegmentCount:
    """Count the encoding, segments and units Twilio will bill for ``text``.

    Segments are packed greedily: a character never straddles two segments,
    so an extension character (2 septets), a surrogate pair or a whole
    grapheme cluster that does not fit moves to the next segment. This is why
    plain division undercounts at the boundaries.

    Example::

        >>> count_segments("a" * 152 + "€" + "b" * 10).segments  # € moves on
        2
        >>> count_segments("🙂" * 35)
        SegmentCount(encoding='UCS-2', segments=1, units=70, characters=35)
    """
    if not text:
        return SegmentCount(encoding="GSM-7", segments=0, units=0, characters=0)
    if is_gsm7(text):
        septets = [2 if char in GSM7_EXTENSION else 1 for char in text]
        segments, units = _pack(septets, GSM7_SINGLE, GSM7_PER_SEGMENT)
        return SegmentCount(encoding="GSM-7", segments=segments, units=units, characters=len(text))
    clusters = split_graphemes(text)
    code_units: list[int] = []
    for cluster in clusters:
        size = utf16_length(cluster)
        if size > UCS2_PER_SEGMENT:
            # A cluster bigger than a whole segment (a "zalgo" pile of
            # combining marks) must be split; do it between code points.
            code_units.extend(utf16_length(point) for point in cluster)
        else:
            code_units.append(size)
    segments, units = _pack(code_units, UCS2_SINGLE, UCS2_PER_SEGMENT)
    return SegmentCount(encoding="UCS-2", segments=segments, units=units, characters=len(clusters))


def _pack(costs: list[int], single: int, per_segment: int) -> tuple[int, int]:
    """Greedy packing of indivisible items; returns (segments, total units)."""
    units = sum(costs)
    if units <= single:
        return 1, units
    segments, free = 1, per_segment
    for cost in costs:
        if cost > free:
            segments += 1
            free = per_segment
        free -= cost
    return segments, units

"""Finish a rendered reply for SMS: numbered choices, GSM-7, length caps.

SMS has no buttons, so choices become numbered lines, one per choice::

    Book a cleaning on Tue Mar 14 at 9:00 AM?
    1. Yes
    2. No

One line per choice (rather than "Reply 1 for Yes, 2 for No") reads well
for two options and for six time slots alike, and is shorter. The number is
the 1-based position in ``choices``; :func:`pick_choice` maps a reply back,
so both directions live here and cannot drift apart.

Example::

    >>> from bot.messages import Choice
    >>> print(finish_sms("Shall I book it?", [Choice("yes", "Yes"), Choice("no", "No")]))
    Shall I book it?
    1. Yes
    2. No
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from bot.sms.normalize import normalize
from bot.sms.segments import MAX_BODY_CHARS, body_length, count_segments, split_graphemes

if TYPE_CHECKING:
    # Annotations only: the SMS helpers stay importable on their own.
    from bot.messages import Choice

#: Marks a cut. Three dots rather than "…", which is not GSM-7.
ELLIPSIS: Final = "..."
#: Model answers on SMS are capped to this many segments by default.
DEFAULT_MAX_SEGMENTS: Final = 2

_SENTENCE_ENDS: Final = frozenset(".!?")
# Trailing punctuation that reads badly right before "...".
_DANGLING: Final = " \t\n,;:-"
# Below this much room for the text, keeping the choices is pointless.
_MIN_TEXT_ROOM: Final = 40


def numbered_options(choices: Sequence[Choice]) -> str:
    """The choices as numbered lines (also the WhatsApp fallback without buttons).

    Titles are collapsed to one line so each choice stays one line.

    Example::

        >>> from bot.messages import Choice
        >>> numbered_options([Choice("am", "Morning"), Choice("pm", "Afternoon")])
        '1. Morning\\n2. Afternoon'
    """
    return "\n".join(
        f"{number}. {_one_line(choice.title)}" for number, choice in enumerate(choices, 1)
    )


def pick_choice(body: str, choices: Sequence[Choice]) -> Choice | None:
    """The choice a user's SMS answer names by number or exact title, if any.

    Accepts "2", " 2. ", "#2", "2)" and the title in any case.

    Example::

        >>> from bot.messages import Choice
        >>> pick_choice("2", [Choice("yes", "Yes"), Choice("no", "No")])
        Choice(payload='no', title='No')
        >>> pick_choice("yes", [Choice("yes", "Yes")]).payload
        'yes'
        >>> pick_choice("3", [Choice("yes", "Yes")]) is None
        True
    """
    answer = body.strip().lstrip("#").rstrip(".)").strip()
    if answer.isascii() and answer.isdigit():
        index = int(answer)
        return choices[index - 1] if 1 <= index <= len(choices) else None
    wanted = _one_line(answer).casefold()
    return next(
        (choice for choice in choices if _one_line(choice.title).casefold() == wanted), None
    )


def finish_sms(text: str, choices: Sequence[Choice] = ()) -> str:
    """Final SMS body: ``text`` plus numbered choices, normalised, ≤ 1600 chars.

    Normalisation (:func:`~bot.sms.normalize.normalize`) runs on the whole
    body, so curly quotes in a title don't push the message into UCS-2. When
    the body is too long the text is cut at a word boundary with "..." and
    the choices are kept whole, since the user needs them to answer.

    Example::

        >>> finish_sms("We’re open Mon–Fri.")
        "We're open Mon-Fri."
        >>> finish_sms("word " * 400)[-12:]  # 1597 chars: cut after a whole word
        'word word...'
    """
    body = text.strip()
    options = numbered_options(choices)
    message = normalize("\n".join(part for part in (body, options) if part))
    if body_length(message) <= MAX_BODY_CHARS:
        return message
    if body and options:
        # Titles hold no newline, so the last len(choices) newlines are ours.
        head, *lines = message.rsplit("\n", len(choices))
        block = "\n".join(lines)
        room = MAX_BODY_CHARS - body_length(block) - 1
        if room >= _MIN_TEXT_ROOM:
            head = _shorten(head, lambda part: body_length(part) <= room, sentences=False)
            return f"{head}\n{block}"
    return _shorten(message, _fits_body, sentences=False)


def cap_segments(text: str, max_segments: int = DEFAULT_MAX_SEGMENTS) -> str:
    """Shorten ``text`` to at most ``max_segments`` SMS segments.

    Used for model answers. The text is normalised first (so the count is
    the one sent), then cut after the last whole sentence that fits when
    that keeps at least half the room, else at a word boundary with "...".

    Example::

        >>> answer = "We are open 8 to 5 on weekdays. " * 20
        >>> capped = cap_segments(answer, 1)
        >>> count_segments(capped).segments, capped.endswith("weekdays.")
        (1, True)
    """
    if max_segments < 1:
        raise ValueError(f"max_segments must be at least 1, got {max_segments}")
    message = normalize(text.strip())

    def fits(part: str) -> bool:
        return count_segments(part).segments <= max_segments

    return _shorten(message, fits, sentences=True)


def _one_line(text: str) -> str:
    """Collapse all whitespace, line breaks included, to single spaces."""
    return " ".join(text.split())


def _fits_body(text: str) -> bool:
    return body_length(text) <= MAX_BODY_CHARS


def _shorten(text: str, fits: Callable[[str], bool], *, sentences: bool) -> str:
    """Longest cut of ``text`` that ``fits``, at a sentence or word boundary.

    ``fits`` must be monotone (a prefix of a fitting text fits), which holds
    for lengths and segment counts. Cuts fall between grapheme clusters, so
    an emoji or accented letter is never split.
    """
    if fits(text):
        return text
    clusters = split_graphemes(text)
    if sentences:
        whole = _longest_prefix(clusters, fits)
        end = _last_sentence_end(clusters, whole)
        if end and end * 2 >= whole:
            return "".join(clusters[:end]).rstrip()
    room = _longest_prefix(clusters, lambda part: fits(part + ELLIPSIS))
    cut = _last_space(clusters, room)
    if cut * 2 < room:
        # One very long "word" (a URL, say): cutting inside it keeps more.
        cut = room
    return "".join(clusters[:cut]).rstrip(_DANGLING) + ELLIPSIS


def _longest_prefix(clusters: list[str], fits: Callable[[str], bool]) -> int:
    """Largest n such that the first n clusters fit (binary search)."""
    low, high = 0, len(clusters)
    while low < high:
        middle = (low + high + 1) // 2
        if fits("".join(clusters[:middle])):
            low = middle
        else:
            high = middle - 1
    return low


def _last_sentence_end(clusters: list[str], limit: int) -> int:
    """Largest n ≤ limit where the first n clusters end a sentence or line."""
    for n in range(limit, 0, -1):
        following = clusters[n] if n < len(clusters) else " "
        if (clusters[n - 1] in _SENTENCE_ENDS and following.isspace()) or following == "\n":
            return n
    return 0


def _last_space(clusters: list[str], limit: int) -> int:
    """Largest n ≤ limit where cluster n is whitespace (a word boundary)."""
    for n in range(min(limit, len(clusters) - 1), 0, -1):
        if clusters[n].isspace():
            return n
    return 0

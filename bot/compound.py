"""Splitting a message that holds several requests into its parts.

People put two things in one text: "what are your hours and can i book a
checkup?", "how much is whitening? also can i come sat". The brain reads
each part on its own (bot/brain/dispatch.py, ``Brain._several``) and answers the
questions first, then goes on with the rest, in one reply.

Only clear joints split: sentence ends (``?``, ``!``, ``.``, ``;``) and
the language's joining words (English "and" / "also" / "plus" / "&" /
"then", Spanish "y" / "también" / "además": ``LanguageProfile.joiners``)
between two parts of at least two
words each; "a cleaning and a whitening" is not two requests, since "a
whitening" alone asks nothing (the brain keeps a split only when its parts
classify confidently).

Example::

    split_requests("what are your hours and can I book a checkup?")
    # ['what are your hours', 'can I book a checkup']
    split_requests("book a cleaning tomorrow at 3pm")
    # ['book a cleaning tomorrow at 3pm']
"""

from __future__ import annotations

import re
from functools import cache

#: English's joining words, the default (bot/languages/profile.py holds each language's).
ENGLISH_JOINERS = ("and", "also", "plus", "&", "then", "n")
#: A message with a part shorter than this many words is one request.
MIN_WORDS = 2
#: At most this many parts are read (a pasted essay is not ten requests).
MAX_PARTS = 4


@cache
def _joint(joiners: tuple[str, ...]) -> re.Pattern[str]:
    """Sentence ends, or a joining word (with an optional comma before it); longer joiners first."""
    words = "|".join(re.escape(w) for w in sorted(joiners, key=len, reverse=True))
    return re.compile(r"(?:[?!;]+|\.(?!\d)|,?\s+(?:" + words + r")\s+(?=\w))", re.IGNORECASE)


def split_requests(text: str, joiners: tuple[str, ...] = ENGLISH_JOINERS) -> list[str]:
    """The parts of ``text`` that may each be a request, in order (one part when it is one).

    >>> split_requests("how much is a cleaning? also r u open sat")
    ['how much is a cleaning', 'r u open sat']
    >>> split_requests("cual es el horario y quiero una cita", ("y", "tambien"))
    ['cual es el horario', 'quiero una cita']
    """
    parts = [p for p in (piece.strip(" ,.") for piece in _joint(joiners).split(text)) if p]
    # "yes and thanks", "a cleaning and a whitening": too short to be requests of their own.
    if not 1 < len(parts) <= MAX_PARTS or any(len(p.split()) < MIN_WORDS for p in parts):
        return [text.strip()]
    return parts

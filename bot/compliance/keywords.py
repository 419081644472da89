"""Twilio's single-word keywords: the platform's own opt-out filter, as data.

Twilio matches a body that is one word (any case; surrounding spaces and
punctuation ignored) against these lists, records the change itself and, by
default, answers it. The bot, the local Twilio simulator and replay all use
:func:`keyword_type`, so the three agree on what Twilio would do.

Example::

    keyword_type("Stop!", opted_out=False)   # OptOutType.STOP
    keyword_type("yes", opted_out=False)     # None: an answer, not an opt-in
"""

from __future__ import annotations

import re

from bot.messages import OptOutType

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"})
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})
#: YES re-subscribes, but only someone who is opted out; otherwise it answers a question.
YES_WORD = "YES"

# Surrounding punctuation and spaces are ignored: "Stop!", " stop. " count.
_STRIP = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)


def keyword_of(body: str) -> str | None:
    """The single-word keyword of ``body``, upper-cased, or None.

    >>> keyword_of("  Stop! ")
    'STOP'
    >>> keyword_of("cancel my appointment") is None
    True
    """
    word = _STRIP.sub("", body.strip())
    if not word or any(ch.isspace() for ch in word):
        return None
    return word.upper()


def keyword_type(body: str, *, opted_out: bool) -> OptOutType | None:
    """Which compliance keyword ``body`` is, for a user who is (or is not) opted out.

    One rule for the bot and for the local Twilio's keyword filter: "YES" is
    an opt-in only while opted out; otherwise it answers a question.

    >>> keyword_type("Stop!", opted_out=False), keyword_type("yes", opted_out=False)
    (<OptOutType.STOP: 'STOP'>, None)
    """
    word = keyword_of(body)
    if word in STOP_WORDS:
        return OptOutType.STOP
    if word in START_WORDS or (word == YES_WORD and opted_out):
        return OptOutType.START
    if word in HELP_WORDS:
        return OptOutType.HELP
    return None

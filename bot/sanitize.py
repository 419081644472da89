"""Removing the characters XML and phones cannot carry from outside text.

XML 1.0 forbids most C0 control characters (``\\x00``, ``\\x0b``, ``\\x1b`` ...)
and the non-characters U+FFFE/U+FFFF; a TwiML answer holding one is not
well-formed and Twilio rejects it. C1 controls (U+0080-U+009F) are allowed by
XML but are never meant as text. Tab, newline and carriage return stay.

Example::

    clean_text("Hi\\x00 there\\x1b[31m")   # 'Hi there[31m'
    clean_line(" Ana\\n Maria\\t")           # 'Ana Maria'
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")
_SPACES = re.compile(r"\s+")


def clean_text(value: str) -> str:
    """``value`` without control characters (tab, newline and CR are kept).

    >>> clean_text("a\\x00b\\x0bc\\nd")
    'abc\\nd'
    """
    return _CONTROL.sub("", value)


def clean_line(value: str) -> str:
    """One line: control characters removed, runs of whitespace as one space, trimmed.

    >>> clean_line(" Ana\\r\\n\\x1b Maria ")
    'Ana Maria'
    """
    return _SPACES.sub(" ", clean_text(value)).strip()

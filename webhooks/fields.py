"""Typed reading of Twilio form fields: every bad value is a clear 400.

Shared by every webhook (messages, status callbacks, voice): numbers are
ASCII digits only (``"²"`` passes ``str.isdigit`` but not ``int``), addresses
are non-empty E.164 (or ``whatsapp:`` + E.164), SIDs have the prefix and
length Twilio guarantees, and free text loses the control characters that
XML cannot carry (a ``ProfileName`` of ``"\\x1b"`` must not break TwiML).

Example::

    count = digits(form, "NumMedia")                  # int | None; 400 on "²" or "-1"
    channel, number = address(form, "From")          # 400 on "whatsapp:" or "abc"
    sid = twilio_sid(form, "MessageSid", MESSAGE_SID_PREFIXES, required=True)
    clean_text("Ana\\x00\\x0b")                        # 'Ana'
"""

from __future__ import annotations

import re
from typing import Final

from bot.errors import BadRequestError
from bot.messages import Channel
from bot.sanitize import clean_line, clean_text
from webhooks.forms import FormData

__all__ = [
    "ACCOUNT_SID_PREFIXES",
    "MESSAGE_SID_PREFIXES",
    "SERVICE_SID_PREFIXES",
    "address",
    "clean_line",
    "clean_text",
    "decimal",
    "digits",
    "text",
    "twilio_sid",
]

#: Inbound and outbound message SIDs: SM (SMS/WhatsApp), MM (MMS).
MESSAGE_SID_PREFIXES: Final = ("SM", "MM")
ACCOUNT_SID_PREFIXES: Final = ("AC",)
SERVICE_SID_PREFIXES: Final = ("MG",)

_DIGITS = re.compile(r"[0-9]{1,9}")
_DECIMAL = re.compile(r"[+-]?[0-9]{1,4}(?:\.[0-9]{1,20})?")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
# A short code (the bot's number may be one); only accepted where allowed.
_SHORT_CODE = re.compile(r"[1-9][0-9]{2,7}")
_SID_BODY = re.compile(r"[0-9a-fA-F]{32}")


def _shown(raw: str) -> str:
    # Echo a bad value back briefly and without control characters.
    return repr(raw[:20])


def digits(form: FormData, name: str) -> int | None:
    """A non-negative integer field of ASCII digits; None when absent or blank.

    >>> digits(FormData([("NumSegments", "2")]), "NumSegments")
    2
    """
    raw = (form.first(name) or "").strip()
    if not raw:
        return None
    if not _DIGITS.fullmatch(raw):
        raise BadRequestError(f"field {name} must be ASCII digits, got {_shown(raw)}")
    return int(raw)


def decimal(form: FormData, name: str, *, bound: float) -> float | None:
    """A decimal number of ASCII digits within ``±bound``; None when absent or blank."""
    raw = (form.first(name) or "").strip()
    if not raw:
        return None
    if not _DECIMAL.fullmatch(raw):
        raise BadRequestError(f"field {name} must be a decimal number, got {_shown(raw)}")
    value = float(raw)
    if abs(value) > bound:
        raise BadRequestError(f"field {name} is out of range")
    return value


def address(form: FormData, name: str, *, short_code: bool = False) -> tuple[Channel, str]:
    """A required address: ``+E164`` or ``whatsapp:+E164`` (or a short code if allowed).

    >>> address(FormData([("From", "whatsapp:+14155550123")]), "From")
    (<Channel.WHATSAPP: 'whatsapp'>, '+14155550123')
    """
    raw = (form.first(name) or "").strip()
    if not raw:
        raise BadRequestError(f"missing required field {name}")
    channel, number = Channel.from_address(raw)
    if not number:
        raise BadRequestError(f"field {name} has no number after {channel.prefix!r}")
    if _E164.fullmatch(number) or (short_code and channel is Channel.SMS and _SHORT_CODE.fullmatch(number)):
        return channel, number
    raise BadRequestError(f"field {name} must be an E.164 number like +14155550123, got {_shown(raw)}")


def twilio_sid(form: FormData, name: str, prefixes: tuple[str, ...], *, required: bool = False) -> str | None:
    """A Twilio SID: one of ``prefixes`` + 32 hex characters; None when absent and not required."""
    raw = (form.first(name) or "").strip()
    if not raw:
        if required:
            raise BadRequestError(f"missing required field {name}")
        return None
    if raw[:2] not in prefixes or not _SID_BODY.fullmatch(raw[2:]):
        wanted = " or ".join(prefixes)
        raise BadRequestError(f"field {name} must be {wanted} followed by 32 hex characters, got {_shown(raw)}")
    return raw


def text(form: FormData, name: str, *, line: bool = False) -> str | None:
    """Free text with control characters removed; None when absent or blank after cleaning.

    ``line=True`` for one-line values (names, button titles): newlines and
    tabs become single spaces.
    """
    raw = form.first(name)
    if raw is None:
        return None
    cleaned = clean_line(raw) if line else clean_text(raw)
    return cleaned or None

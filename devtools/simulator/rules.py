"""Twilio's rules as data: API version, keyword confirmations, magic test numbers, limits, address shapes.

What the simulated account checks a "create message" request against; the
values are Twilio's (``/work/shared/twilio/FACTS.md``).

Example::

    MAGIC_TO["+15005550001"]     # (21211, "Invalid 'To' Phone Number")
    is_e164("+14155550123")      # True
    parse_variables('{"1": "Ana"}')  # {'1': 'Ana'}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import Final

import phonenumbers

from devtools.simulator.errors import TwilioApiError

API_VERSION: Final = "2010-04-01"


USER_AGENT: Final = "TwilioProxy/1.1"

# Twilio's default confirmation texts for the keywords on SMS.
DEFAULT_KEYWORD_REPLIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "STOP": (
            "You have successfully been unsubscribed. You will not receive any more "
            "messages from this number. Reply START to resubscribe."
        ),
        "START": (
            "You have successfully been re-subscribed to messages from this number. "
            "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
        ),
        "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    }
)



# The magic test numbers (FACTS.md). Real Twilio honours them only with test
# credentials; the simulator always does, since the numbers are reserved.
MAGIC_FROM: Final[Mapping[str, tuple[int, str]]] = MappingProxyType(
    {
        "+15005550001": (
            21212,
            "The 'From' number {n} is not a valid phone number, shortcode, or alphanumeric sender ID.",
        ),
        "+15005550007": (
            21606,
            "The 'From' phone number {n} is not a valid, message-capable Twilio phone number for this destination.",
        ),
        "+15005550008": (21611, "This 'From' number ({n}) has exceeded the maximum number of queued messages"),
    }
)
MAGIC_TO: Final[Mapping[str, tuple[int, str]]] = MappingProxyType(
    {
        "+15005550001": (21211, "Invalid 'To' Phone Number: {n}"),
        "+15005550002": (
            21612,
            "The 'To' phone number: {n}, is not currently reachable using the 'From' phone number via SMS.",
        ),
        "+15005550003": (
            21408,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {n}.",
        ),
        "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
        "+15005550009": (21614, "'To' number {n} is not a valid mobile number"),
    }
)

CONTENT_LIMIT: Final = 1024  # 63021, rendered template
WHATSAPP_WINDOW: Final = timedelta(hours=24)

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")


SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


def is_e164(number: str) -> bool:
    """Whether ``number`` is a possible E.164 number (``+`` and up to 15 digits), as Twilio checks `To`."""
    if not _E164.match(number):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


def parse_variables(raw: str | None) -> dict[str, str]:
    """``ContentVariables`` (a JSON object of strings or numbers) as strings; else Twilio's 21656."""
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise TwilioApiError(21656, "The ContentVariables Parameter is invalid")
    return {str(k): str(v) for k, v in value.items()}

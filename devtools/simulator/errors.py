"""Twilio's error catalog as the simulator speaks it: codes, messages, the JSON error body.

Example::

    TwilioApiError(21211, "Invalid 'To' Phone Number: 123").body()["more_info"]
    ERROR_MESSAGES[30003]
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from bot.errors import BotError

MORE_INFO: Final = "https://www.twilio.com/docs/errors/{code}"


# Text Twilio puts in ``error_message`` for the delivery-time codes we produce.
ERROR_MESSAGES: Final[Mapping[int, str]] = MappingProxyType(
    {
        21610: "Attempt to send to unsubscribed recipient",
        30003: "Unreachable destination handset",
        30004: "Message blocked",
        30005: "Unknown destination handset",
        30006: "Landline or unreachable carrier",
        30007: "Message filtered",
        30008: "Unknown error",
        30034: "Message blocked: unregistered A2P 10DLC number",
        63016: (
            "Failed to send freeform message because you are outside the allowed "
            "window. If you are using WhatsApp, please use a Message Template."
        ),
    }
)



class TwilioApiError(BotError):
    """A request the simulated Twilio refuses, with Twilio's code and HTTP status.

    :meth:`body` is Twilio's JSON error body, which the SDK turns into
    ``TwilioRestException(code=...)``.

    >>> TwilioApiError(21211, "Invalid 'To' Phone Number: 123").body()["more_info"]
    'https://www.twilio.com/docs/errors/21211'
    """

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        """Twilio's error JSON: ``code``, ``message``, ``more_info``, ``status``."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }

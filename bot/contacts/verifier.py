"""Twilio Verify through the official SDK: send a one-time code, check it.

Twilio's answers become a small closed set of outcomes, so the conversation
never sees an HTTP status:

==========================  =========================================
Twilio                      :class:`VerifyOutcome`
==========================  =========================================
check ``approved``          ``APPROVED``
check ``pending``           ``WRONG_CODE``
404 / 20404                 ``EXPIRED`` (expired, approved or none)
429 / 60202                 ``TOO_MANY_CHECKS``
429 / 60203                 ``TOO_MANY_SENDS``
60200 and other 4xx         ``REJECTED`` (e.g. not a valid number)
5xx, network                ``UNAVAILABLE`` (try again later)
==========================  =========================================

With ``TWILIO_API_BASE_URL`` set, Verify calls go to that host too (the local
simulator serves the Verify v2 paths).

Example::

    verifier = TwilioVerifier(client, service_sid="VA...")
    await verifier.start("+14155550199", channel="sms")      # VerifyOutcome.SENT
    await verifier.check("+14155550199", "123456")           # VerifyOutcome.APPROVED
"""

from __future__ import annotations

import enum
import logging
from typing import Any, Protocol

from twilio.base.exceptions import TwilioException, TwilioRestException

from bot.observability import mask_phone

log = logging.getLogger("bot.verify")


class VerifyOutcome(enum.Enum):
    """What came of a start or a check."""

    SENT = "sent"
    APPROVED = "approved"
    WRONG_CODE = "wrong_code"
    EXPIRED = "expired"
    TOO_MANY_CHECKS = "too_many_checks"
    TOO_MANY_SENDS = "too_many_sends"
    REJECTED = "rejected"
    UNAVAILABLE = "unavailable"


_BY_CODE = {
    20404: VerifyOutcome.EXPIRED,
    60202: VerifyOutcome.TOO_MANY_CHECKS,
    60203: VerifyOutcome.TOO_MANY_SENDS,
}


def outcome_of_error(status: int, code: int | None) -> VerifyOutcome:
    """Map Twilio's error answer to an outcome.

    >>> outcome_of_error(404, 20404), outcome_of_error(429, 60202), outcome_of_error(503, None)
    (<VerifyOutcome.EXPIRED: 'expired'>, <VerifyOutcome.TOO_MANY_CHECKS: 'too_many_checks'>, \
<VerifyOutcome.UNAVAILABLE: 'unavailable'>)
    """
    if code in _BY_CODE:
        return _BY_CODE[code]
    if status == 404:
        return VerifyOutcome.EXPIRED
    if status >= 500 or status == 0:
        return VerifyOutcome.UNAVAILABLE
    return VerifyOutcome.REJECTED


class Verifier(Protocol):
    """Sends and checks one-time codes."""

    async def start(self, to: str, *, channel: str) -> VerifyOutcome: ...

    async def check(self, to: str, code: str) -> VerifyOutcome: ...


class TwilioVerifier:
    """A :class:`Verifier` over Twilio Verify v2 (``TWILIO_VERIFY_SERVICE_SID``)."""

    def __init__(self, client: Any, *, service_sid: str) -> None:
        # ``client`` may be a callable that returns the client: the process opens it after wiring.
        self._client = client
        self._service_sid = service_sid

    @property
    def _service(self) -> Any:
        client = self._client() if callable(self._client) else self._client
        return client.verify.v2.services(self._service_sid)

    async def start(self, to: str, *, channel: str) -> VerifyOutcome:
        """Send a code to ``to`` by ``channel`` (``sms`` or ``whatsapp``)."""
        try:
            await self._service.verifications.create_async(to=to, channel=channel)
        except TwilioRestException as exc:
            log.info("verify start failed", extra={"fields": {"to": mask_phone(to), "status": exc.status,
                                                               "code": exc.code}})
            return outcome_of_error(exc.status, exc.code)
        except (TwilioException, OSError) as exc:
            log.warning("verify unreachable", extra={"fields": {"error": type(exc).__name__}})
            return VerifyOutcome.UNAVAILABLE
        return VerifyOutcome.SENT

    async def check(self, to: str, code: str) -> VerifyOutcome:
        """Check ``code`` for ``to``."""
        try:
            result = await self._service.verification_checks.create_async(to=to, code=code)
        except TwilioRestException as exc:
            return outcome_of_error(exc.status, exc.code)
        except (TwilioException, OSError) as exc:
            log.warning("verify unreachable", extra={"fields": {"error": type(exc).__name__}})
            return VerifyOutcome.UNAVAILABLE
        return VerifyOutcome.APPROVED if result.status == "approved" else VerifyOutcome.WRONG_CODE

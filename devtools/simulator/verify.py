"""Twilio Verify v2, served locally: start a verification, check its code.

Paths, form fields, statuses and error codes follow ``twilio_verify_v2.json``
and Twilio's documented behaviour, so the official SDK works unchanged once
``client.verify.base_url`` points here:

- ``POST /v2/Services/{ServiceSid}/Verifications`` (``To``, ``Channel``) → 201,
  ``status: pending``. A new start while one is pending resends the same code.
  More than :data:`MAX_SENDS` starts to one number within the validity
  window: 429, error 60203.
- ``POST /v2/Services/{ServiceSid}/VerificationCheck`` (``To`` or
  ``VerificationSid``, ``Code``) → 200: ``approved`` on the right code,
  ``pending`` on a wrong one; after :data:`MAX_CHECKS` wrong codes: 429,
  error 60202 (the verification is then ``max_attempts_reached``). No pending
  verification (never started, expired after 10 minutes, already approved):
  404, error 20404.

Codes are random 6-digit strings, kept in :attr:`LocalVerify.sent` so the dev
phone's *Codes* panel (and tests) can read them. The simulator's clock decides
expiry, so ``advance`` in a transcript expires a code.

Example::

    verify = LocalVerify(account_sid=sid, auth_token=token, clock=FrozenClock())
    app.include_router(create_verify_router(verify))
    client.verify.base_url = "http://127.0.0.1:8010"
    client.verify.v2.services("VA" + "0" * 32).verifications.create(to="+14155550123", channel="sms")
    verify.sent[-1].code
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bot.clock import Clock, SystemClock
from devtools.simulator.api import basic_credentials

VALIDITY: Final = timedelta(minutes=10)
MAX_CHECKS: Final = 5
MAX_SENDS: Final = 5
CHANNELS: Final = frozenset({"sms", "whatsapp", "call", "email", "sna", "auto"})
_SERVICE_SID = re.compile(r"^VA[0-9a-fA-F]{32}$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _iso(moment: datetime) -> str:
    """Verify's dates: ISO 8601 in UTC with a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Verification:
    """One verification of one address: its code, status and counters."""

    sid: str
    service_sid: str
    to: str
    channel: str
    code: str
    created: datetime
    status: str = "pending"
    checks: int = 0
    sends: list[datetime] = field(default_factory=list)

    def resource(self, account_sid: str, now: datetime) -> dict[str, Any]:
        return {
            "sid": self.sid, "service_sid": self.service_sid, "account_sid": account_sid,
            "to": self.to, "channel": self.channel, "status": self.status,
            "valid": self.status == "approved", "lookup": {}, "amount": None, "payee": None,
            "send_code_attempts": [
                {"attempt_sid": "VL" + secrets.token_hex(16), "channel": self.channel, "time": _iso(t)}
                for t in self.sends
            ],
            "date_created": _iso(self.created), "date_updated": _iso(now), "sna": None,
            "url": f"https://verify.twilio.com/v2/Services/{self.service_sid}/Verifications/{self.sid}",
        }

    def check_resource(self, account_sid: str, now: datetime) -> dict[str, Any]:
        return {
            "sid": self.sid, "service_sid": self.service_sid, "account_sid": account_sid,
            "to": self.to, "channel": self.channel, "status": self.status,
            "valid": self.status == "approved", "amount": None, "payee": None,
            "date_created": _iso(self.created), "date_updated": _iso(now),
            "sna_attempts_error_codes": [],
        }


@dataclass(frozen=True)
class SentCode:
    """A code the local Verify "sent": what the *Codes* panel shows."""

    to: str
    channel: str
    code: str
    at: datetime


class VerifyError(Exception):
    """A Twilio error answer: ``code``, ``message``, HTTP ``status``."""

    def __init__(self, code: int, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class LocalVerify:
    """Verifications by (service, address), and the codes sent."""

    account_sid: str
    auth_token: str
    clock: Clock = field(default_factory=SystemClock)
    sent: list[SentCode] = field(default_factory=list)
    listeners: list[Callable[[SentCode], None]] = field(default_factory=list)
    _live: dict[tuple[str, str], Verification] = field(default_factory=dict)

    def _current(self, service_sid: str, to: str) -> Verification | None:
        found = self._live.get((service_sid, to))
        if found is not None and self.clock.now() - found.created >= VALIDITY:
            found.status = "expired"
            del self._live[service_sid, to]
            return None
        return found

    def start(self, service_sid: str, to: str, channel: str) -> Verification:
        """Start (or resend) a verification of ``to``."""
        if channel not in CHANNELS:
            raise VerifyError(60200, f"Invalid parameter `Channel`: {channel}", 400)
        pattern = _EMAIL if channel == "email" else _E164
        if not pattern.match(to):
            raise VerifyError(60200, f"Invalid parameter `To`: {to}", 400)
        now = self.clock.now()
        current = self._current(service_sid, to)
        if current is None:
            current = Verification(
                sid="VE" + secrets.token_hex(16), service_sid=service_sid, to=to, channel=channel,
                code=f"{secrets.randbelow(10**6):06d}", created=now,
            )
            self._live[service_sid, to] = current
        if len(current.sends) >= MAX_SENDS:
            raise VerifyError(60203, "Max send attempts reached", 429)
        current.sends.append(now)
        sent = SentCode(to=to, channel=channel, code=current.code, at=now)
        self.sent.append(sent)
        for listener in list(self.listeners):
            listener(sent)
        return current

    def check(self, service_sid: str, code: str, *, to: str = "", verification_sid: str = "") -> Verification:
        """Check ``code`` against the pending verification of ``to`` (or ``verification_sid``)."""
        found: Verification | None = None
        if verification_sid:
            found = next((v for v in self._live.values() if v.sid == verification_sid), None)
            found = found and self._current(service_sid, found.to)
        elif to:
            found = self._current(service_sid, to)
        else:
            raise VerifyError(60200, "Either a 'To' or a 'VerificationSid' must be specified", 400)
        if found is None:
            raise VerifyError(20404, "The requested resource was not found", 404)
        if found.checks >= MAX_CHECKS:
            found.status = "max_attempts_reached"
            raise VerifyError(60202, "Max check attempts reached", 429)
        found.checks += 1
        if secrets.compare_digest(code.encode(), found.code.encode()):
            found.status = "approved"
            del self._live[service_sid, found.to]
        return found


def _error(exc: VerifyError) -> JSONResponse:
    return JSONResponse(
        {"code": exc.code, "message": exc.message,
         "more_info": f"https://www.twilio.com/docs/errors/{exc.code}", "status": exc.status},
        status_code=exc.status,
    )


def _authorized(verify: LocalVerify, header: str) -> bool:
    """Basic auth as Twilio checks it (the Messages API's parser), both halves compared in constant time."""
    user, password = basic_credentials(header)
    good_user = secrets.compare_digest(user.encode(), verify.account_sid.encode())
    good_token = secrets.compare_digest(password.encode(), verify.auth_token.encode())
    return good_user and good_token


def create_verify_router(verify: LocalVerify) -> APIRouter:
    """The two Verify v2 endpoints bound to ``verify``."""
    router = APIRouter()

    async def guard(request: Request, service_sid: str) -> Response | None:
        if not _authorized(verify, request.headers.get("authorization", "")):
            return _error(VerifyError(20003, "Authenticate", 401))
        if not _SERVICE_SID.match(service_sid):
            return _error(VerifyError(20404, "The requested resource was not found", 404))
        return None

    @router.post("/v2/Services/{service_sid}/Verifications", status_code=201)
    async def start(request: Request, service_sid: str) -> Response:
        if (denied := await guard(request, service_sid)) is not None:
            return denied
        form = await request.form()
        try:
            found = verify.start(service_sid, str(form.get("To", "")), str(form.get("Channel", "")))
        except VerifyError as exc:
            return _error(exc)
        return JSONResponse(found.resource(verify.account_sid, verify.clock.now()), status_code=201)

    @router.post("/v2/Services/{service_sid}/VerificationCheck")
    async def check(request: Request, service_sid: str) -> Response:
        if (denied := await guard(request, service_sid)) is not None:
            return denied
        form = await request.form()
        try:
            found = verify.check(
                service_sid, str(form.get("Code", "")),
                to=str(form.get("To", "")), verification_sid=str(form.get("VerificationSid", "")),
            )
        except VerifyError as exc:
            return _error(exc)
        return JSONResponse(found.check_resource(verify.account_sid, verify.clock.now()), status_code=200)

    return router

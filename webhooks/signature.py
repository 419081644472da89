"""Checking ``X-Twilio-Signature`` the way Twilio computes it.

The official SDK's :class:`~twilio.request_validator.RequestValidator` does
the HMAC (with and without the default port, constant-time compare); this
module supplies the right URL: the public URL Twilio called, rebuilt from
``PUBLIC_BASE_URL`` when set, since behind a proxy or tunnel the app sees
``http://internal:8000`` while Twilio signed ``https://bot.example.com``.

Example::

    checker = SignatureChecker(auth_token="12345", public_base_url="https://example.com")
    checker.verify(request, form)  # raises SignatureError on mismatch
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs, urlparse

from starlette.requests import Request
from twilio.request_validator import (
    HMAC_SHA1,
    HMAC_SHA256,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
    remove_port,
)

from bot.errors import SignatureError
from webhooks.forms import FormData


class SignatureChecker:
    """Verifies signatures for one auth token and public base URL."""

    def __init__(self, auth_token: str, public_base_url: str | None = None) -> None:
        self._validator = RequestValidator(auth_token)
        self._base = public_base_url.rstrip("/") if public_base_url else None

    def url_for(self, request: Request) -> str:
        """The URL Twilio signed: the public base + path + query, as sent."""
        if self._base is None:
            return str(request.url)
        query = request.url.query
        return f"{self._base}{request.url.path}" + (f"?{query}" if query else "")

    def verify(self, request: Request, form: FormData) -> None:
        signature = request.headers.get("x-twilio-signature")
        if not signature:
            raise SignatureError("missing X-Twilio-Signature header")
        algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
        url = self.url_for(request)
        if self._matches_first_variant(url, form, signature, algorithm):
            return
        if not self._validator.validate(url, form, signature, algorithm):
            raise SignatureError("X-Twilio-Signature does not match this request")

    def _matches_first_variant(self, url: str, form: FormData, signature: str, algorithm: str) -> bool:
        # RequestValidator.validate always computes two HMACs (the URL without
        # and with the default port) and compares them in pure Python. Check
        # the first of them, built exactly as validate builds it, with one HMAC
        # and a constant-time C compare; on a miss validate() decides as
        # before, so the accepted signatures are the same.
        if algorithm.upper() not in (HMAC_SHA1, HMAC_SHA256):
            return False
        parsed = urlparse(url)
        if "bodySHA256" in parse_qs(parsed.query):
            return False
        expected = self._validator.compute_signature(remove_port(parsed), form, algorithm)
        return hmac.compare_digest(expected.encode(), signature.encode())

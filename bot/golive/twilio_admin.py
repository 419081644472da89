"""The official SDK's client for account set-up calls (numbers, services, senders, content).

A plain synchronous client: these are one-off command-line calls, not the
hot path. ``TWILIO_API_BASE_URL`` points every Twilio domain used here at one
host (the local simulator serves them all).

Example::

    client = admin_client(settings)
    client.incoming_phone_numbers.list(phone_number="+15005550006")
"""

from __future__ import annotations

from typing import Any

from bot.settings import Settings

# The SDK domains set-up calls use; the simulator serves each at its own paths.
DOMAINS = ("api", "content", "messaging")


def admin_client(settings: Settings, *, timeout: float = 10.0) -> Any:
    """A ``twilio.rest.Client`` for ``settings`` (base URL override applied to every domain)."""
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=TwilioHttpClient(timeout=timeout),
    )
    if settings.twilio_api_base_url:
        for name in DOMAINS:
            getattr(client, name).base_url = settings.twilio_api_base_url
    return client


def twilio_reason(exc: Exception) -> str:
    """``HTTP 401 error 20003: Authenticate`` from either of the SDK's error shapes."""
    import json

    status = getattr(exc, "status", None)
    code = getattr(exc, "code", None)
    message = getattr(exc, "msg", None)
    # Listing pages raise TwilioException("Unable to fetch page", response).
    response = exc.args[1] if len(exc.args) > 1 else None
    if status is None and response is not None and hasattr(response, "status_code"):
        status = response.status_code
        try:
            body = json.loads(response.text)
            code, message = body.get("code"), body.get("message")
        except (ValueError, AttributeError):
            message = str(getattr(response, "text", ""))[:200]
    if status is None:
        return str(exc)
    return f"HTTP {status} error {code}: {message}"

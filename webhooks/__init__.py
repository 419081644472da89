"""FastAPI adapter: Twilio HTTP in, TwiML out. See :func:`webhooks.app.create_app`."""

from __future__ import annotations

from webhooks.app import create_app

__all__ = ["create_app"]

"""The public URLs Twilio must call for this bot, built from one base URL.

Example::

    urls = WebhookUrls.from_base("https://bot.example.com")
    urls.messages      # "https://bot.example.com/twilio/messages"
    urls.voice_status  # "https://bot.example.com/twilio/voice/status"
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import ConfigError

_BASE = re.compile(r"^https?://[^/\s?#]+$")


@dataclass(frozen=True, slots=True)
class WebhookUrls:
    """The bot's webhook endpoints under ``base`` (scheme://host[:port], no path)."""

    base: str
    messages: str
    status: str
    voice: str
    voice_status: str

    @classmethod
    def from_base(cls, base: str) -> WebhookUrls:
        """Raises :class:`ConfigError` unless ``base`` is an http(s) URL without a path."""
        base = base.strip().rstrip("/")
        if not _BASE.match(base):
            raise ConfigError(f"{base!r} is not a base URL like https://bot.example.com (no path)")
        return cls(
            base=base,
            messages=f"{base}/twilio/messages",
            status=f"{base}/twilio/status",
            voice=f"{base}/twilio/voice",
            voice_status=f"{base}/twilio/voice/status",
        )

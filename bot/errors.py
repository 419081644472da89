"""One error hierarchy for the whole project.

Every error we raise on purpose derives from :class:`BotError`, so callers can
catch "our" failures apart from bugs. Errors that cross a network boundary say
whether trying again can help (``retryable``), the way python-telegram-bot
groups ``NetworkError`` apart from ``BadRequest``.

Example::

    try:
        await sender.send(message)
    except ChannelSendError as exc:
        if exc.retryable:
            ...
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error this project raises deliberately."""


class ConfigError(BotError):
    """Settings are missing or invalid; start-up stops with this message."""


class BadRequestError(BotError):
    """An inbound request is malformed; the webhook answers 4xx with ``reason``."""

    def __init__(self, reason: str, status_code: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code


class SignatureError(BotError):
    """The ``X-Twilio-Signature`` header is missing or does not match (403)."""


class StoreError(BotError):
    """The conversation store could not be reached or answered wrongly (503)."""


class LockTimeoutError(StoreError):
    """A conversation stayed locked by an earlier message for too long."""


class TemplateError(BotError):
    """A reply template is missing, or rendering it failed (StrictUndefined)."""


class TranscriptError(BotError):
    """A transcript file is invalid; the message names the file and line."""


class ChannelSendError(BotError):
    """Sending a message through Twilio failed.

    ``code`` is Twilio's error code when it gave one; ``retryable`` says
    whether the same request may succeed later (20429, 5xx, network errors).
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        status: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.retryable = retryable


class RecipientOptedOutError(ChannelSendError):
    """The recipient opted out; nothing may be sent to them (Twilio 21610)."""

    def __init__(self, message: str = "recipient has opted out", *, code: int | None = 21610) -> None:
        super().__init__(message, code=code, retryable=False)

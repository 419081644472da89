"""Outbound errors beyond :mod:`bot.errors`: every one is a ``ChannelSendError``.

They carry Twilio's ``code`` (when there is one) and say whether trying again
can help (``retryable``), so a job knows whether to retry and a broadcast
summary can group failures by code.

Example::

    try:
        await sender.send(request)
    except RecipientUnreachableError as exc:
        exc.code  # 21211, 21614 or 30006: the number is marked, nothing more goes to it
"""

from __future__ import annotations

from typing import Any

from bot.errors import BotError, ChannelSendError

# Twilio codes that say the number itself cannot receive our messages.
UNREACHABLE_CODES = frozenset({21211, 21614, 30006})
# 21610: the recipient opted out (at send time, or in a status callback).
OPTED_OUT_CODE = 21610
# 63016: WhatsApp free-form message outside the 24 h window.
OUTSIDE_WINDOW_CODE = 63016


class RecipientUnreachableError(ChannelSendError):
    """The number cannot receive messages (invalid, not mobile, landline); never retried."""

    def __init__(self, message: str = "recipient cannot receive messages", *, code: int | None = None) -> None:
        super().__init__(message, code=code, retryable=False)


class OutsideWindowError(ChannelSendError):
    """A free-form WhatsApp message outside the 24 h window, with no template to fall back on."""

    def __init__(self, message: str = "outside the WhatsApp 24 h window and no template given") -> None:
        super().__init__(message, code=OUTSIDE_WINDOW_CODE, retryable=False)


class SendInProgressError(ChannelSendError):
    """Another attempt holds this idempotency key right now; try again shortly."""

    def __init__(self, message: str = "another attempt is sending this message") -> None:
        super().__init__(message, retryable=True)


class NetworkSendError(ChannelSendError):
    """No HTTP answer from Twilio. ``ambiguous``: the request may have arrived anyway.

    A timeout or a dropped connection after the request was written may mean
    Twilio created the message; the sender checks before trying again.
    """

    def __init__(self, message: str, *, ambiguous: bool) -> None:
        super().__init__(message, retryable=True)
        self.ambiguous = ambiguous


class SendDeferred(BotError):
    """Not a failure: the sender's pace says this send's turn is ``delay`` seconds away."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"deferred {delay:.2f}s by the sending rate")
        self.delay = delay


class SendHeld(BotError):
    """Not a failure: quiet hours hold this bot-started message; it is already scheduled for ``hold.release_at``.

    Callers that only log a :class:`~bot.errors.BotError` lose nothing: the
    outbox sends it at the release time (re-checking opt-out and the window).
    """

    def __init__(self, hold: Any) -> None:
        super().__init__(f"held for quiet hours {hold.text()}")
        self.hold = hold

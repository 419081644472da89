"""One staff email and the protocol that sends it.

Example::

    message = EmailMessage(event_id="handoff:SM1", to=("staff@clinic.example",),
                           subject="Patient asked for a person", text="...", html="<p>...</p>")
    await sender.send(message)   # raises EmailSendError(retryable=...) on failure
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.errors import BotError


class EmailSendError(BotError):
    """Sending an email failed; ``retryable`` for 429, 5xx and network errors (never 4xx)."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass(frozen=True)
class EmailMessage:
    """A rendered email. ``event_id`` names the event it reports: one email per event."""

    event_id: str
    to: tuple[str, ...]
    subject: str
    text: str
    html: str


class EmailSender(Protocol):
    """Sends one email or raises :class:`EmailSendError`."""

    async def send(self, message: EmailMessage) -> None: ...

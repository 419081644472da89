"""The SendGrid sender: the official ``sendgrid`` library, off the event loop.

SendGrid answers 202 to an accepted email. 429 and 5xx (and network errors)
may succeed later and are raised as retryable; every other 4xx (bad body,
bad key, forbidden sender) never will, so it is raised as final. ``host``
points the library elsewhere (``SENDGRID_API_BASE_URL``: the local simulator).

Example::

    sender = SendGridSender("SG.key", from_email="bot@clinic.example", from_name="Clinic bot")
    await sender.send(message)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Content, Email, Mail, To

from bot.mail.message import EmailMessage, EmailSendError

log = logging.getLogger("bot.mail")

DEFAULT_HOST: Final = "https://api.sendgrid.com"


def retryable_status(status: int) -> bool:
    """429 and 5xx may succeed later; other 4xx never do.

    >>> [retryable_status(s) for s in (202, 400, 401, 429, 500, 503)]
    [False, False, False, True, True, True]
    """
    return status == 429 or status >= 500


class SendGridSender:
    """An :class:`~bot.mail.message.EmailSender` over SendGrid's v3 ``/mail/send``."""

    def __init__(self, api_key: str, *, from_email: str, from_name: str = "", host: str | None = None) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=(host or DEFAULT_HOST).rstrip("/"))
        self._from = Email(from_email, from_name or None)

    def _mail(self, message: EmailMessage) -> Mail:
        mail = Mail(from_email=self._from, to_emails=[To(addr) for addr in message.to], subject=message.subject)
        mail.add_content(Content("text/plain", message.text))
        mail.add_content(Content("text/html", message.html))
        return mail

    def _send_now(self, message: EmailMessage) -> None:
        try:
            response = self._client.send(self._mail(message))
        except HTTPError as exc:
            status = int(getattr(exc, "status_code", 0) or 0)
            raise EmailSendError(
                f"SendGrid answered {status}", status=status, retryable=retryable_status(status)
            ) from None
        except OSError as exc:  # URLError, connection refused, timeouts
            raise EmailSendError(f"SendGrid unreachable: {type(exc).__name__}", retryable=True) from None
        status = int(response.status_code)
        if status >= 300:
            raise EmailSendError(f"SendGrid answered {status}", status=status, retryable=retryable_status(status))

    async def send(self, message: EmailMessage) -> None:
        """Send ``message``; the library is synchronous, so it runs in a thread."""
        await asyncio.to_thread(self._send_now, message)

"""Outbound messaging: everything the bot sends outside a TwiML answer.

- :mod:`~bot.outbound.sender`: the one REST choke point (suppression,
  idempotency, 24 h window, retries, typed errors);
- :mod:`~bot.outbound.templates`: the WhatsApp content-template registry;
- :mod:`~bot.outbound.outbox`: durable hand-off (arq or in-process) and the
  REST ``Deliver`` for late replies;
- :mod:`~bot.outbound.status`: status callbacks, forward-only per message;
- :mod:`~bot.outbound.reminders`, :mod:`~bot.outbound.broadcast`,
  :mod:`~bot.outbound.campaigns`: scheduled and bulk sends;
- :mod:`~bot.outbound.jobs` (and ``bot/worker.py``): the worker's jobs.

See docs/outbound.md. Example::

    outbound = runtime.require_outbound()
    result = await outbound.sender.send(SendRequest(key=key, body="Hi!", idempotency_key="hello:1"))
"""

from __future__ import annotations

from bot.outbound.errors import (
    NetworkSendError,
    OutsideWindowError,
    RecipientUnreachableError,
    SendInProgressError,
)
from bot.outbound.models import SendRequest, SendResult
from bot.outbound.outbox import ArqOutbox, InlineOutbox, Outbox, rest_deliverer
from bot.outbound.sender import Sender
from bot.outbound.service import Outbound, build_outbound
from bot.outbound.templates import ContentTemplate, ContentTemplates

__all__ = [
    "ArqOutbox",
    "ContentTemplate",
    "ContentTemplates",
    "InlineOutbox",
    "NetworkSendError",
    "Outbound",
    "Outbox",
    "OutsideWindowError",
    "RecipientUnreachableError",
    "SendInProgressError",
    "SendRequest",
    "SendResult",
    "Sender",
    "build_outbound",
    "rest_deliverer",
]

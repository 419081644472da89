"""The outbox: durable "send this later" and "finish this turn" for every process.

Web handlers, flows, reminders and broadcasts do not call Twilio inline when
the work may outlive them; they hand it to an :class:`Outbox`:

- :class:`~bot.outbound.arq_outbox.ArqOutbox` (``REDIS_URL`` set): an arq job on the same Redis. Job
  ids come from the idempotency key, so arq itself drops a second submit
  while the first is queued, and a job a crashed worker held runs again
  (the sender's ledger makes that re-run send nothing twice).
- :class:`~bot.outbound.inline_outbox.InlineOutbox` (no Redis: development, the replay runner, tests):
  asyncio tasks in this process, with the same semantics while it lives;
  ``await outbox.drain()`` waits for everything pending.

:func:`~bot.outbound.perform.rest_deliverer` is the engine ``Deliver`` for turns answered by REST
(late replies, WhatsApp buttons): it sends the turn's replies in order and
returns the empty TwiML.

This module holds the protocol, the job names and ids; what the jobs do is
:mod:`bot.outbound.perform`. What they need of the process is one typed
:class:`~bot.outbound.perform.OutboxJobs`, built
at the composition root (:mod:`bot.runtime`), not the whole runtime.

Example::

    outbox = runtime.require_outbound().outbox
    await outbox.submit(SendRequest(key=key, body="Your results are in",
                                    idempotency_key="results:42"), delay=5)
    await outbox.submit_turn(msg, delay=31)       # re-run it if the web process dies
    deliver = rest_deliverer(runtime.outbox_jobs)  # engine.handle(msg, deliver=deliver)
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final, Protocol

from bot.errors import BotError, ChannelSendError, RecipientOptedOutError, TemplateError
from bot.messages import InboundMessage
from bot.outbound.errors import OutsideWindowError, RecipientUnreachableError
from bot.outbound.ledger import ref_for
from bot.outbound.models import SendRequest
from bot.storage.base import ConversationKey

if TYPE_CHECKING:
    from bot.quiet_hours import Hold

JOB_SEND: Final = "send"
JOB_BROADCAST: Final = "broadcast"
JOB_RUN_TURN: Final = "run_turn"
JOB_REMINDERS: Final = "reminders"
#: Waits between tries of a job that failed with a retryable error.
RETRY_DELAYS: Final = (2.0, 10.0, 30.0, 120.0)
#: Seconds between replies of one turn handed to the outbox (they keep their order).
REPLY_SPACING: Final = 1.0
#: The template that re-opens a closed WhatsApp window, if the registry has it.
WELCOME_BACK: Final = "welcome_back"


class Outbox(Protocol):
    """Durable hand-off of sends and turns; see the module docstring."""

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        """Send ``request`` after ``delay`` seconds; at most once per idempotency key."""
        ...

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        """Re-run ``message``'s turn after ``delay`` if it is still unanswered.

        The job calls ``engine.handle(message, deliver=rest_deliverer(...))``;
        the engine's exactly-once check makes it a no-op when the turn was
        answered (its process did not die).
        """
        ...

    async def submit_held(self, request: SendRequest, hold: Hold) -> None:
        """Send ``request`` at ``hold.release_at`` (quiet hours), under a job id of its own."""
        ...

    async def close(self) -> None: ...


def held_job_id(request: SendRequest, hold: Hold) -> str:
    """The released send's job id: apart from the job that held it, one per release time."""
    return f"{send_job_id(request)}:held:{int(hold.release_at.timestamp())}"


def send_job_id(request: SendRequest) -> str:
    """arq job id for a send: a hash of the idempotency key (no phone numbers in Redis keys)."""
    return f"{JOB_BROADCAST if request.campaign else JOB_SEND}:{ref_for(request.idempotency_key)}"


def turn_job_id(message: InboundMessage) -> str:
    return f"{JOB_RUN_TURN}:{message.event_id}"


def dumps(data: Any) -> bytes:
    """arq's job serializer: JSON, never pickle (a queued job survives code moves)."""
    # Results of failed jobs are exceptions: keep their text.
    return json.dumps(data, default=repr, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


def recipient_id(key: ConversationKey) -> str:
    """A campaign's member name for a recipient: its Twilio address."""
    return key.channel.address(key.user)


def outcome_for(exc: BotError) -> str:
    """A campaign outcome for a send that did not happen.

    Refusals before any request (status None) are skips; answers from
    Twilio are failures by their code.
    """
    if isinstance(exc, ChannelSendError) and exc.status is None:
        if isinstance(exc, RecipientOptedOutError):
            return "skipped:opted_out"
        if isinstance(exc, RecipientUnreachableError):
            return "skipped:unreachable"
        if isinstance(exc, OutsideWindowError):
            return "skipped:outside_window"
    if isinstance(exc, TemplateError):
        return "failed:template"
    code = getattr(exc, "code", None)
    return f"failed:{code or 'network'}"

"""What the outbox's jobs do, wherever they run: send one request, run one turn, deliver a turn by REST.

The worker's arq jobs (:mod:`bot.outbound.jobs`) and the in-process outbox
(:mod:`bot.outbound.inline_outbox`) both call these, with the one typed
:class:`OutboxJobs` the composition root (:mod:`bot.runtime`) builds.

Example::

    outcome = await perform_send(jobs, request, last_try=False)   # "sent", "duplicate", "skipped:opted_out" ...
    deliver = rest_deliverer(runtime.outbox_jobs)                 # engine.handle(msg, deliver=deliver)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.channels import profile_of
from bot.engine import Deliver, TurnFailedError
from bot.errors import BotError, ChannelSendError, StoreError, TemplateError
from bot.messages import InboundMessage, Reply, TemplateMessage, TurnResult
from bot.outbound.errors import SendDeferred, SendHeld
from bot.outbound.ledger import ref_for
from bot.outbound.models import SendRequest
from bot.outbound.outbox import (
    JOB_BROADCAST,
    JOB_RUN_TURN,
    JOB_SEND,
    REPLY_SPACING,
    RETRY_DELAYS,
    WELCOME_BACK,
    Outbox,
    outcome_for,
    recipient_id,
)
from bot.storage.base import ConversationKey, ConversationState

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.engine import Engine
    from bot.observability import Metrics
    from bot.outbound.campaigns import Campaigns, Pacer
    from bot.outbound.sender import Sender
    from bot.outbound.templates import ContentTemplates
    from bot.templates import ReplyTemplates



log = logging.getLogger("bot.outbound")



@dataclass(frozen=True)
class OutboxJobs:
    """Everything the outbox's jobs use, and nothing more: built once at the composition root.

    The send and broadcast jobs use the sender, campaigns and pacer; the
    re-run-turn job the engine; the apology the reply templates. The web
    app's late replies, the worker and the in-process outbox all run these.

    Example::

        jobs = runtime.outbox_jobs
        await perform_send(jobs, request, last_try=False)
        await perform_turn(jobs, message)
    """

    sender: Sender
    outbox: Outbox
    campaigns: Campaigns
    pacer: Pacer
    content: ContentTemplates
    replies: ReplyTemplates
    engine: Engine
    clock: Clock
    metrics: Metrics
    #: Messages per second of a campaign that set none (``BROADCAST_RATE_PER_SECOND``).
    default_rate: float


async def perform_send(jobs: OutboxJobs, request: SendRequest, *, last_try: bool) -> str:
    """A send job's body, shared by both outboxes; returns the outcome.

    Retryable errors propagate (for the caller to try again later) unless
    this is the last try; a campaign records each recipient's outcome once.
    A campaign's send first waits for its slot at the campaign's rate
    (:class:`~bot.outbound.campaigns.Pacer`); :class:`SendDeferred` says to
    run it again later, which is no failure.
    """
    job = JOB_BROADCAST if request.campaign else JOB_SEND
    if request.campaign:
        rate = await jobs.campaigns.rate(request.campaign) or jobs.default_rate
        delay = await jobs.pacer.turn(ref_for(request.idempotency_key), sender=request.key.bot, rate=rate)
        if delay:
            raise SendDeferred(delay)
    try:
        await jobs.sender.send(request)
        outcome = "sent"
    except SendHeld:
        # Scheduled for the release time already; the campaign's outcome comes then.
        jobs.metrics.jobs.labels(job, "held").inc()
        return "held"
    except (ChannelSendError, StoreError) as exc:
        if exc_retryable(exc) and not last_try:
            jobs.metrics.jobs.labels(job, "retry").inc()
            raise
        outcome = outcome_for(exc)
    except TemplateError as exc:
        log.error("send job has a bad template request", extra={"fields": {"error": str(exc)}})
        outcome = outcome_for(exc)
    if request.campaign:
        await jobs.campaigns.record(request.campaign, recipient_id(request.key), outcome)
    jobs.metrics.jobs.labels(job, outcome.split(":", 1)[0]).inc()
    return outcome


def exc_retryable(exc: BaseException) -> bool:
    """Whether a job failing with ``exc`` should run again later."""
    if isinstance(exc, ChannelSendError):
        return exc.retryable
    return isinstance(exc, StoreError)


async def perform_turn(jobs: OutboxJobs, message: InboundMessage) -> str:
    """A re-run-turn job's body: ``answered``, ``duplicate`` (nothing to do) or ``failed``."""
    try:
        handled = await jobs.engine.handle(message, deliver=rest_deliverer(jobs))
    except TurnFailedError as exc:
        # The web path answers a crash with an apology; so does the late path.
        if exc.may_reply:
            await _apologise(jobs, message)
        jobs.metrics.jobs.labels(JOB_RUN_TURN, "failed").inc()
        return "failed"
    outcome = "duplicate" if handled.duplicate else "answered"
    jobs.metrics.jobs.labels(JOB_RUN_TURN, outcome).inc()
    return outcome


async def _apologise(jobs: OutboxJobs, message: InboundMessage) -> None:
    try:
        text = jobs.replies.render("error", message.channel.value)
    except Exception:  # a broken template must not hide the apology
        text = "Sorry, something went wrong on our side. Please try again in a moment."
    key = ConversationKey(message.channel, message.bot, message.user)
    request = SendRequest(key=key, body=text, idempotency_key=f"apology:{message.event_id}",
                          last_inbound_at=jobs.clock.timestamp())
    try:
        await jobs.sender.send(request)
    except BotError as exc:
        log.warning("apology not sent", extra={"fields": {"error": str(exc)}})


def rest_deliverer(jobs: OutboxJobs) -> Deliver:
    """The engine ``Deliver`` that sends a turn's replies through the REST sender.

    Replies go out in order, each with the idempotency key
    ``reply:<MessageSid>:<index>`` (a re-run turn sends nothing twice), and
    nothing is left for the webhook's answer (``""``: it serves the empty
    ``<Response/>``; TwiML is the web adapter's business, ``webhooks/twiml.py``).
    A reply that fails with a retryable error goes to the outbox, and the ones after it follow it there, spaced, so
    they keep their order. On WhatsApp a free-form reply that meets a closed
    window falls back to the ``welcome_back`` template when it is registered.
    """

    async def deliver(msg: InboundMessage, result: TurnResult, state: ConversationState) -> str:
        key = ConversationKey(msg.channel, msg.bot, msg.user)
        fallback = _welcome_back(jobs.content, msg)
        handed_over = 0  # replies given to the outbox; the later ones follow, spaced
        for index, reply in enumerate(result.replies):
            if not _sendable(reply):
                continue
            request = SendRequest(
                key=key, idempotency_key=f"reply:{msg.event_id}:{index}", body=reply.text,
                media=reply.media, choices=reply.choices, template=reply.template,
                fallback_template=fallback, purpose="reply", compliance=reply.compliance,
                last_inbound_at=state.last_inbound_at,
            )
            if not handed_over:
                try:
                    await jobs.sender.send(request)
                    jobs.metrics.replies.labels(msg.channel.value, "rest").inc()
                    continue
                except SendHeld:
                    # A late answer at night: it goes at the release time; the
                    # replies after it follow it there, in order.
                    handed_over += 1
                    continue
                except ChannelSendError as exc:
                    if not exc.retryable:
                        continue  # the sender logged and counted it; nothing more can help
                except TemplateError as exc:
                    # A reply asking for a template the registry cannot render is a
                    # bug to fix, not a reason to lose the turn's other replies.
                    log.error("reply template refused", extra={"fields": {"sid": msg.event_id,
                                                                           "error": str(exc)}})
                    continue
            await jobs.outbox.submit(request, delay=RETRY_DELAYS[0] + handed_over * REPLY_SPACING)
            handed_over += 1
        return ""  # everything went by REST: the webhook answers the empty <Response/>

    return deliver


def _sendable(reply: Reply) -> bool:
    return bool(reply.text.strip() or reply.media or reply.template or reply.choices)


def _welcome_back(content: ContentTemplates, msg: InboundMessage) -> TemplateMessage | None:
    if not profile_of(msg.channel).content_templates or WELCOME_BACK not in content:
        return None
    if content.get(WELCOME_BACK).variables != ("name",):
        return None
    return TemplateMessage(WELCOME_BACK, {"name": (msg.profile_name or "").strip() or "there"})

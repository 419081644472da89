"""The one outbound choke point: every message the bot sends outside a TwiML
answer goes through :meth:`Sender.send`.

In order, for each :class:`~bot.outbound.models.SendRequest`:

1. **Idempotency**: a key that was sent already returns the first result.
2. **Suppression**: opted-out users (the engine's flag) and numbers marked
   unreachable get nothing; :class:`~bot.errors.RecipientOptedOutError` /
   :class:`~bot.outbound.errors.RecipientUnreachableError`, logged and counted.
3. **Content** (:mod:`bot.outbound.plan`): SMS gets text (a template's
   ``sms_fallback``); WhatsApp gets free-form text, quick-reply buttons (up
   to three choices) or a list picker (four to ten) inside the 24 h window
   and only content templates outside it (:mod:`bot.outbound.window`).
4. **Claim** the key in the ledger, then ``client.messages.create_async`` via
   the official SDK, with a status callback to ``/twilio/status``.
5. **Retries** (:mod:`bot.outbound.messages_api`) on 20429, 5xx and network
   errors: exponential backoff with jitter, bounded (``OUTBOUND_MAX_ATTEMPTS``);
   permanent errors never. After a timeout the request may have reached
   Twilio, so before trying again the sender looks for the message at Twilio
   (and it does the same when it finds a claim left behind by a crashed attempt).
6. **Errors teach**: 21610 opts the user out everywhere; 21211/21614/30006
   mark the number unreachable; 63016 (Twilio still sees the window closed)
   retries once with the request's fallback template; a refused quick-reply
   template retries once as numbered text.

Example::

    sender = Sender(settings=settings, store=store, clock=clock, metrics=metrics,
                    templates=ContentTemplates.load(Path("intents/templates.yaml")), twilio=client)
    result = await sender.send(SendRequest(key=key, body="Your table is ready",
                                           idempotency_key="reply:SM123:0"))
    result.sid, result.duplicate   # ('SM...', False); a second call: same sid, True
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from bot.clock import Clock
from bot.errors import ChannelSendError, RecipientOptedOutError
from bot.observability import Metrics, mask_phone
from bot.outbound.errors import (
    OutsideWindowError,
    RecipientUnreachableError,
    SendHeld,
    SendInProgressError,
)
from bot.outbound.held import QuietGate
from bot.outbound.ledger import SendLedger, SendRecord, ref_for
from bot.outbound.messages_api import REQUEST_TIMEOUT, MessagesApi
from bot.outbound.models import SendRequest, SendResult
from bot.outbound.plan import plan_send
from bot.outbound.suppression import OptOutReport, Suppressions
from bot.outbound.templates import ContentTemplates
from bot.outbound.window import DEFAULT_MARGIN, WhatsAppWindow
from bot.settings import Settings
from bot.storage.base import ConversationStore
from bot.storage.ledger import LedgerStore
from bot.storage.stores import Stores

log = logging.getLogger("bot.outbound")





class Sender:
    """Sends :class:`SendRequest` s through the official SDK's async client.

    ``twilio`` (a ``twilio.rest.Client`` on ``AsyncTwilioHttpClient``) may be
    set later through :attr:`client`, once the process opened it.
    ``max_attempts``, ``backoff_seconds`` and ``lease_seconds`` default to
    ``OUTBOUND_MAX_ATTEMPTS``, ``OUTBOUND_BACKOFF_SECONDS`` and
    ``WORKER_JOB_TIMEOUT_SECONDS`` (a claim lives as long as a job may run).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        store: ConversationStore,
        clock: Clock,
        ledger_store: LedgerStore | None = None,
        metrics: Metrics,
        templates: ContentTemplates,
        twilio: Any = None,
        max_attempts: int | None = None,
        backoff_seconds: float | None = None,
        lease_seconds: float | None = None,
        window_margin: timedelta = DEFAULT_MARGIN,
        request_timeout: float = REQUEST_TIMEOUT,
        quiet: QuietGate | None = None,
        on_opt_out: OptOutReport | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.templates = templates
        # The ledger store beside the conversation store unless given (same backend).
        ledger_store = ledger_store or Stores.beside(store).ledger
        self.ledger = SendLedger(ledger_store)
        self.suppressions = Suppressions(store, ledger_store, metrics, on_opt_out=on_opt_out)
        self.window = WhatsAppWindow(store, clock, margin=window_margin)
        self.api = MessagesApi(
            ledger=self.ledger, metrics=metrics, client=twilio,
            max_attempts=max_attempts or settings.outbound_max_attempts,
            backoff=settings.outbound_backoff_seconds if backoff_seconds is None else backoff_seconds,
            request_timeout=request_timeout, callback_url=self.status_callback_url,
        )
        self.lease_seconds = lease_seconds or settings.worker_job_timeout_seconds
        # Quiet hours for bot-started messages (bot/outbound/held.py); None: never held.
        self.quiet = quiet

    @property
    def client(self) -> Any:
        """The process's Twilio client (``Runtime.open`` sets it; None until then)."""
        return self.api.client

    @client.setter
    def client(self, twilio: Any) -> None:
        self.api.client = twilio

    def status_callback_url(self, ref: str) -> str | None:
        """Where Twilio reports this send's statuses (None without ``PUBLIC_BASE_URL``).

        ``ref`` names the send, so the callback finds its context even if it
        arrives before our own record of the SID.
        """
        base = self.settings.public_base_url
        return f"{base}/twilio/status?ref={ref}" if base else None

    # -- the one entry point -------------------------------------------------
    async def send(self, request: SendRequest) -> SendResult:
        """Send ``request`` once; see the module docstring for the rules.

        Raises :class:`~bot.errors.ChannelSendError` (or a subclass) with
        Twilio's ``code`` and ``retryable`` when nothing was sent.
        """
        ref = ref_for(request.idempotency_key)
        existing = await self.ledger.get(ref)
        if existing is not None and existing.state == "sent":
            return self._duplicate(request, existing)
        await self._check_suppressed(request)
        if self.quiet is not None and (hold := await self.quiet.check(request)) is not None:
            self._count(request, "held")
            raise SendHeld(hold)
        try:
            plan = await plan_send(request, templates=self.templates, window=self.window,
                                   service_sid=self.settings.twilio_messaging_service_sid)
        except OutsideWindowError:
            self._count(request, "refused_window")
            raise

        record = SendRecord.pending(
            request, token=secrets.token_hex(8), lease_seconds=self.lease_seconds,
            claimed_at=self.clock.timestamp(),
        )
        existing = await self.ledger.claim(record)
        if existing is not None:
            if existing.state == "sent":
                return self._duplicate(request, existing)
            if not existing.lease_lapsed:
                raise SendInProgressError()
            # An earlier attempt died holding the key: did its message go out?
            found = await self.api.find(plan, existing)
            if found is not None:
                done = await self.ledger.complete(existing, sid=found.sid, status=found.status or "queued",
                                                  template=plan.template, window_fallback=plan.window_fallback)
                self._count(request, "sent")
                log.info("send recovered: the interrupted attempt had reached Twilio",
                         extra={"fields": self._fields(request, sid=found.sid)})
                return done.result(duplicate=False)
            if not await self.ledger.take_over(existing, record):
                raise SendInProgressError()

        try:
            instance, used = await self.api.deliver(plan, record)
        except ChannelSendError as exc:
            await self.ledger.release(record)
            await self._failed(request, exc)
            raise
        done = await self.ledger.complete(
            record, sid=instance.sid, status=instance.status or "queued", template=used.template,
            window_fallback=used.window_fallback,
        )
        if used.segments is not None:
            self.metrics.segments.labels(used.segments.encoding).inc(used.segments.segments)
        self._count(request, "sent")
        cost = {} if used.segments is None else {"segments": f"{used.segments.segments}x{used.segments.encoding}"}
        log.info("sent", extra={"fields": self._fields(request, sid=instance.sid, template=used.template,
                                                        window_fallback=used.window_fallback, **cost)})
        return done.result(duplicate=False)

    # -- refusals and outcomes ---------------------------------------------------
    async def _check_suppressed(self, request: SendRequest) -> None:
        reason = await self.suppressions.reason(request.key, compliance=request.compliance)
        if reason is None:
            return
        self._count(request, f"refused_{reason}")
        log.info("send refused", extra={"fields": self._fields(request, reason=reason)})
        if reason == "opted_out":
            raise RecipientOptedOutError("recipient has opted out; nothing is sent to them")
        code = await self.suppressions.unreachable_code(request.key)
        raise RecipientUnreachableError("the number was marked unable to receive messages", code=code)

    def _duplicate(self, request: SendRequest, record: SendRecord) -> SendResult:
        self._count(request, "duplicate")
        log.info("duplicate send skipped", extra={"fields": self._fields(request, sid=record.sid)})
        return record.result(duplicate=True)

    async def _failed(self, request: SendRequest, exc: ChannelSendError) -> None:
        changed = await self.suppressions.record_error(request.key, exc.code)
        outcome = {"opted_out": "refused_opted_out", "unreachable": "refused_unreachable"}.get(changed or "", "failed")
        self._count(request, outcome)
        log.warning("send failed", extra={"fields": self._fields(
            request, code=exc.code, retryable=exc.retryable, error=str(exc))})

    def _count(self, request: SendRequest, outcome: str) -> None:
        self.metrics.outbound.labels(request.key.channel.value, request.purpose, outcome).inc()

    @staticmethod
    def _fields(request: SendRequest, **extra: Any) -> dict[str, Any]:
        return {
            "ref": ref_for(request.idempotency_key),
            "channel": request.key.channel.value,
            "user": mask_phone(request.key.user),
            "purpose": request.purpose,
            **({"campaign": request.campaign} if request.campaign else {}),
            **extra,
        }

"""The one outbound choke point: every message the bot sends outside a TwiML
answer goes through :meth:`Sender.send`.

In order, for each :class:`~bot.outbound.models.SendRequest`:

1. **Idempotency**: a key that was sent already returns the first result.
2. **Suppression**: opted-out users (the engine's flag) and numbers marked
   unreachable get nothing; :class:`~bot.errors.RecipientOptedOutError` /
   :class:`~bot.outbound.errors.RecipientUnreachableError`, logged and counted.
3. **Content**: SMS gets text (a template's ``sms_fallback``); WhatsApp gets
   free-form text, quick-reply buttons (up to three choices) or a list
   picker (four to ten) inside the 24 h window and only
   content templates outside it (:mod:`bot.outbound.window`).
4. **Claim** the key in the ledger, then ``client.messages.create_async`` via
   the official SDK, with a status callback to ``/twilio/status``.
5. **Retries** on 20429, 5xx and network errors: exponential backoff with
   jitter, bounded (``OUTBOUND_MAX_ATTEMPTS``); permanent errors never. After
   a timeout the request may have reached Twilio, so before trying again the
   sender looks for the message at Twilio (and it does the same when it finds
   a claim left behind by a crashed attempt).
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

import asyncio
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)
from twilio.base.exceptions import TwilioRestException

from bot.channels import ChannelProfile, profile_of
from bot.clock import Clock
from bot.errors import ChannelSendError, RecipientOptedOutError, TemplateError
from bot.messages import Reply, TemplateMessage
from bot.observability import Metrics, error_code_label, mask_phone
from bot.outbound.errors import (
    OPTED_OUT_CODE,
    OUTSIDE_WINDOW_CODE,
    UNREACHABLE_CODES,
    NetworkSendError,
    OutsideWindowError,
    RecipientUnreachableError,
    SendHeld,
    SendInProgressError,
)
from bot.outbound.held import QuietGate
from bot.outbound.ledger import SendLedger, SendRecord, ref_for
from bot.outbound.models import SendRequest, SendResult
from bot.outbound.suppression import OptOutReport, Suppressions
from bot.outbound.templates import LIST_ITEM_MAX, QUICK_REPLY_MAX, ContentTemplates
from bot.outbound.window import DEFAULT_MARGIN, WhatsAppWindow
from bot.settings import Settings
from bot.sms.segments import SegmentCount
from bot.storage.base import ConversationStore
from bot.storage.ledger import LedgerStore
from bot.storage.stores import Stores

log = logging.getLogger("bot.outbound")

#: Codes worth another try besides 429 and 5xx: a full sender queue (21611)
#: and WhatsApp's rate limit (63018) drain by themselves.
RETRYABLE_CODES: Final = frozenset({20429, 21611, 63018})
#: Twilio refusing a content template itself: unknown or unapproved SID (21655,
#: 63027), bad variables (21656, 63028), content too long (63021).
CONTENT_ERRORS: Final = frozenset({21655, 21656, 63021, 63027, 63028})
#: Clock difference tolerated between us and Twilio when matching a message
#: that a lost answer or a crash left us unsure about.
CLOCK_SKEW: Final = timedelta(minutes=2)
BACKOFF_MAX: Final = 8.0
#: Seconds one API call may take. Enforced here because twilio 9.13's
#: ``AsyncTwilioHttpClient`` stores its ``timeout`` but never applies it.
REQUEST_TIMEOUT: Final = 10.0


@dataclass(frozen=True, slots=True)
class _Plan:
    """Exactly what one create call sends."""

    to: str
    from_: str | None
    service_sid: str | None
    body: str | None = None
    media: tuple[str, ...] = ()
    content_sid: str | None = None
    content_variables: str | None = None
    template: str | None = None
    window_fallback: bool = False
    segments: SegmentCount | None = None
    # A synchronous 63016 means Twilio sees the window closed: send this instead.
    on_window_error: _Plan | None = None
    # Buttons are an extra: if Twilio refuses their template, send the text.
    on_content_error: _Plan | None = None

    def params(self, status_callback: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {"to": self.to}
        if self.from_:
            params["from_"] = self.from_
        if self.service_sid:
            params["messaging_service_sid"] = self.service_sid
        if self.content_sid:
            params["content_sid"] = self.content_sid
            if self.content_variables:
                params["content_variables"] = self.content_variables
        else:
            if self.body:
                params["body"] = self.body
            if self.media:
                params["media_url"] = list(self.media[:10])
        if status_callback:
            params["status_callback"] = status_callback
        return params


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
        self.client: Any = twilio
        # The ledger store beside the conversation store unless given (same backend).
        ledger_store = ledger_store or Stores.beside(store).ledger
        self.ledger = SendLedger(ledger_store)
        self.suppressions = Suppressions(store, ledger_store, metrics, on_opt_out=on_opt_out)
        self.window = WhatsAppWindow(store, clock, margin=window_margin)
        self.max_attempts = max_attempts or settings.outbound_max_attempts
        self.backoff = settings.outbound_backoff_seconds if backoff_seconds is None else backoff_seconds
        self.lease_seconds = lease_seconds or settings.worker_job_timeout_seconds
        self.request_timeout = request_timeout
        # Quiet hours for bot-started messages (bot/outbound/held.py); None: never held.
        self.quiet = quiet

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
        plan = await self._plan(request)

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
            found = await self._find_at_twilio(plan, existing)
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
            instance, used = await self._deliver(plan, record)
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

    # -- what to send ------------------------------------------------------------
    async def _plan(self, request: SendRequest) -> _Plan:
        key = request.key
        service = self.settings.twilio_messaging_service_sid
        if not key.bot and not service:
            raise ChannelSendError("no sender: the key has no bot number and no Messaging Service is set")
        base = _Plan(to=key.channel.address(key.user), from_=key.channel.address(key.bot) if key.bot else None,
                     service_sid=service)
        profile = profile_of(key.channel)
        if request.template is not None:
            return self._template_plan(base, request.template, profile, media=request.media)
        if profile.session_window is None and not profile.buttons:
            return self._text_plan(base, request)

        fallback = None
        if request.fallback_template is not None:
            fallback = replace(self._template_plan(base, request.fallback_template, profile),
                               window_fallback=True)
        if profile.session_window is not None and not await self.window.is_open(
            key, last_inbound_at=request.last_inbound_at
        ):
            if fallback is None:
                self._count(request, "refused_window")
                raise OutsideWindowError()
            return fallback
        text = self._text_plan(base, request)
        buttons = self._quick_reply_plan(base, request, profile)
        plan = replace(buttons, on_content_error=text) if buttons is not None else text
        return replace(plan, on_window_error=fallback)

    def _template_plan(
        self, base: _Plan, template: TemplateMessage, profile: ChannelProfile, *, media: tuple[str, ...] = ()
    ) -> _Plan:
        if not profile.content_templates:
            # No content templates on SMS: the registry's text fallback.
            out = profile.prepare(Reply(text=self.templates.render_sms(template.name, template.variables),
                                        media=media))
            return replace(base, body=out.body, media=out.media, template=template.name, segments=out.segments)
        spec = self.templates.get(template.name)
        return replace(base, content_sid=spec.content_sid, template=template.name,
                       content_variables=self.templates.content_variables(template.name, template.variables))

    def _text_plan(self, base: _Plan, request: SendRequest) -> _Plan:
        out = profile_of(request.key.channel).prepare(Reply(text=request.body, media=request.media,
                                                            choices=request.choices))
        return replace(base, body=out.body, media=out.media, segments=out.segments)

    def _quick_reply_plan(self, base: _Plan, request: SendRequest, profile: ChannelProfile) -> _Plan | None:
        """Choices as WhatsApp buttons: a quick-reply content template for up to three, a list
        picker for more (WhatsApp allows three quick replies), when they fit."""
        choices = request.choices
        if len(choices) <= QUICK_REPLY_MAX:
            name, limit = f"quick_reply_{len(choices)}", profile.button_title_max
        else:
            name, limit = f"list_picker_{len(choices)}", LIST_ITEM_MAX
        if not profile.buttons or request.media or not request.body.strip() or name not in self.templates:
            return None
        if limit is not None and any(len(c.title.strip()) > limit for c in choices):
            return None  # WhatsApp would refuse; numbered lines still work
        values = {"body": request.body.strip()}
        for number, choice in enumerate(choices, 1):
            values[f"title_{number}"] = choice.title
            values[f"payload_{number}"] = choice.payload
        try:
            variables = self.templates.content_variables(name, values)
        except TemplateError:
            return None  # too long for a template: plain text carries it
        return replace(base, content_sid=self.templates.get(name).content_sid, content_variables=variables,
                       template=name)

    # -- talking to Twilio ---------------------------------------------------------
    async def _deliver(self, plan: _Plan, record: SendRecord) -> tuple[Any, _Plan]:
        try:
            return await self._create_with_retries(plan, record), plan
        except ChannelSendError as exc:
            if exc.code == OUTSIDE_WINDOW_CODE and plan.on_window_error is not None:
                # Twilio sees the window closed although our record says open
                # (clock skew, state restored from elsewhere): once, with the template.
                log.info("63016 at send: retrying with the fallback template",
                         extra={"fields": {"ref": record.ref}})
                retry = plan.on_window_error
            elif exc.code in CONTENT_ERRORS and plan.on_content_error is not None:
                # The quick-reply template is missing or not approved in this
                # account: the choices still go, as numbered lines.
                log.warning("quick-reply template refused; sending text", extra={"fields": {
                    "ref": record.ref, "template": plan.template, "code": exc.code}})
                retry = plan.on_content_error
            else:
                raise
            return await self._create_with_retries(retry, record), retry

    async def _create_with_retries(self, plan: _Plan, record: SendRecord) -> Any:
        if self.client is None:
            raise ChannelSendError("the Twilio client is not open (Runtime.open was not called)")
        ambiguous = False
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.max_attempts),
            # backoff x 1, 2, 4 ... plus up to one backoff of jitter, so many
            # senders throttled at once do not come back in step.
            wait=wait_exponential(multiplier=self.backoff, max=BACKOFF_MAX) + wait_random(0, self.backoff),
            retry=retry_if_exception(lambda exc: isinstance(exc, ChannelSendError) and exc.retryable),
            before_sleep=self._log_retry,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if ambiguous:
                    found = await self._find_at_twilio(plan, record)
                    if found is not None:
                        return found
                try:
                    async with asyncio.timeout(self.request_timeout):
                        return await self.client.messages.create_async(
                            **plan.params(self.status_callback_url(record.ref))
                        )
                except Exception as exc:
                    error = to_send_error(exc)
                    if error is None:
                        raise
                    ambiguous = ambiguous or (isinstance(error, NetworkSendError) and error.ambiguous)
                    self.metrics.outbound_errors.labels(error_code_label(error.code) or "network",
                                                        str(error.retryable).lower()).inc()
                    raise error from exc
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        wait = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning("send attempt failed; retrying", extra={"fields": {
            "attempt": state.attempt_number, "wait": round(wait, 3),
            "code": getattr(error, "code", None), "error": str(error)}})

    async def _find_at_twilio(self, plan: _Plan, record: SendRecord) -> Any:
        """The message an interrupted attempt may have created, or None.

        Newest messages to the same address since the claim, from the same
        sender, with the same body (free-form), that no other send owns.
        """
        since = datetime.fromtimestamp(record.claimed_at, UTC) - CLOCK_SKEW
        try:
            async with asyncio.timeout(self.request_timeout):
                candidates = await self.client.messages.list_async(to=plan.to, limit=20)
        except Exception as exc:  # a failed lookup must not block the send itself
            log.warning("lookup of an interrupted send failed", extra={"fields": {"ref": record.ref,
                                                                                   "error": str(exc)}})
            return None
        for message in candidates:
            if not str(message.direction or "").startswith("outbound"):
                continue
            if message.date_created is not None and message.date_created < since:
                continue
            if plan.from_ and message.from_ and message.from_ != plan.from_:
                continue
            if plan.content_sid is None and plan.body is not None and (message.body or "") != plan.body:
                continue
            owner = await self.ledger.owner_of(message.sid)
            if owner is not None and owner != record.ref:
                continue
            return message
        return None


_NUMBER = re.compile(r"\+?\d[\d ]{5,}\d")


def _scrub(text: str) -> str:
    """Twilio's messages quote phone numbers ("Invalid 'To' Phone Number: +1..."); logs must not."""
    return _NUMBER.sub(lambda m: mask_phone(m.group(0).replace(" ", "")), str(text))


def to_send_error(exc: BaseException) -> ChannelSendError | None:
    """Map what the SDK raised to our typed errors (None: not a send failure, a bug).

    >>> to_send_error(TwilioRestException(429, "/Messages.json", "Too many requests", code=20429)).retryable
    True
    """
    if isinstance(exc, ChannelSendError):
        return exc
    if isinstance(exc, TwilioRestException):
        code, status = exc.code, exc.status
        text = f"Twilio {status}" + (f" {code}" if code else "") + f": {_scrub(exc.msg)}"
        typed: ChannelSendError
        if code == OPTED_OUT_CODE:
            typed = RecipientOptedOutError(text)
        elif code in UNREACHABLE_CODES:
            typed = RecipientUnreachableError(text, code=code)
        elif code == OUTSIDE_WINDOW_CODE:
            typed = OutsideWindowError(text)
        else:
            retryable = status == 429 or status >= 500 or code in RETRYABLE_CODES
            return ChannelSendError(text, code=code, status=status, retryable=retryable)
        # Twilio's answer, not our refusal: a status tells them apart.
        typed.status = status
        return typed
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Never connected: Twilio cannot have the request.
        return NetworkSendError(f"cannot reach Twilio: {exc}", ambiguous=False)
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ClientError | OSError):
        return NetworkSendError(f"no answer from Twilio: {exc.__class__.__name__}: {exc}", ambiguous=True)
    return None

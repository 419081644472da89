"""Twilio's Messages API as the sender uses it: one create with bounded retries, and Twilio's errors as ours.

Retries on 20429, 5xx and network errors use exponential backoff with jitter,
bounded (``OUTBOUND_MAX_ATTEMPTS``); permanent errors never retry. After a
timeout the request may have reached Twilio, so before trying again
:class:`MessagesApi` looks for the message at Twilio (:meth:`MessagesApi.find`,
which the sender also uses for a claim a crashed attempt left behind).
:func:`to_send_error` maps what the official SDK raised to
:class:`~bot.errors.ChannelSendError` and its subclasses.

Example::

    api = MessagesApi(ledger=ledger, metrics=metrics, max_attempts=4, backoff=0.5,
                      request_timeout=10.0, callback_url=lambda ref: None, client=twilio)
    instance, used = await api.deliver(plan, record)   # used: the plan, or its alternative
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
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

from bot.errors import ChannelSendError, RecipientOptedOutError
from bot.observability import Metrics, error_code_label, mask_phone
from bot.outbound.errors import (
    OPTED_OUT_CODE,
    OUTSIDE_WINDOW_CODE,
    UNREACHABLE_CODES,
    NetworkSendError,
    OutsideWindowError,
    RecipientUnreachableError,
)
from bot.outbound.ledger import SendLedger, SendRecord
from bot.outbound.plan import SendPlan

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


class MessagesApi:
    """Creates messages through the official SDK's async client (``client``, set once the process opened it)."""

    def __init__(
        self,
        *,
        ledger: SendLedger,
        metrics: Metrics,
        max_attempts: int,
        backoff: float,
        request_timeout: float,
        callback_url: Callable[[str], str | None],
        client: Any = None,
    ) -> None:
        self.ledger = ledger  # which send owns a message found at Twilio
        self.metrics = metrics
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.request_timeout = request_timeout
        # Where Twilio reports a send's statuses, by the send's ref.
        self.callback_url = callback_url
        self.client: Any = client

    async def deliver(self, plan: SendPlan, record: SendRecord) -> tuple[Any, SendPlan]:
        """Create the message, with one retry of the plan's alternative after 63016 or a refused template."""
        try:
            return await self.create_with_retries(plan, record), plan
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
            return await self.create_with_retries(retry, record), retry

    async def create_with_retries(self, plan: SendPlan, record: SendRecord) -> Any:
        """One create call, tried again on retryable errors; after an ambiguous failure it looks first."""
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
                    found = await self.find(plan, record)
                    if found is not None:
                        return found
                try:
                    async with asyncio.timeout(self.request_timeout):
                        return await self.client.messages.create_async(
                            **plan.params(self.callback_url(record.ref))
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

    async def find(self, plan: SendPlan, record: SendRecord) -> Any:
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

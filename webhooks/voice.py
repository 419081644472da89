"""``POST /twilio/voice`` and its follow-ups: phone calls talk to the same engine.

The number's Voice URL is ``/twilio/voice``: it answers with a greeting
inside a ``<Gather input="speech dtmf">`` (speech hints from the business's
service names). Every request below is signed like every webhook (403
otherwise); each ``action`` URL is relative and carries the call's turn
counter, part of the signed URL:

``/twilio/voice/turn?n=N``
    What the caller said (``SpeechResult``/``Confidence``) or pressed
    (``Digits``): one engine turn, exactly once per ``CallSid`` + ``n``
    (:attr:`~bot.messages.InboundMessage.event_id`). Low-confidence speech is
    confirmed first ("I think you said ... Is that right?"), never guessed.
``/twilio/voice/result?n=N&w=W``
    A turn slower than ``REPLY_BUDGET_SECONDS`` answered "One moment" and a
    ``<Redirect>`` here; this serves the finished turn, waiting a bounded
    number of times (``VOICE_MAX_REDIRECTS``).
``/twilio/voice/dial?n=N``
    The hand-off ``<Dial>`` ended. Not answered (busy, no-answer, failed,
    canceled): the caller hears so and is offered a text back; staff get an SMS.
``/twilio/voice/followup?n=N``
    The caller's answer to "Would you like us to text you back?".
``/twilio/voice/status``
    Call status callbacks: recorded per call, counted once
    (``bot_calls_total{status}``, ``bot_call_seconds``).

Example (what Twilio sends)::

    POST /twilio/voice/turn?n=2
    X-Twilio-Signature: ...
    CallSid=CA...&From=%2B1415...&To=%2B1500...&SpeechResult=Book+a+cleaning.&Confidence=0.92
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from bot.channels import records_key
from bot.engine import Deliver, HandledTurn, TurnFailedError
from bot.errors import BadRequestError, StoreError
from bot.flows.base import NO, YES
from bot.languages.choose import STATE_KEY as LANGUAGE_KEY
from bot.memo import fingerprint, memo
from bot.messages import Channel, InboundMessage, TurnResult
from bot.observability import mask_phone
from bot.outbound.models import SendRequest
from bot.storage.backend import Records
from bot.storage.base import ConversationKey, ConversationState
from bot.storage.stores import Stores
from bot.voice.calls import FINAL_STATUSES, CallLog
from bot.voice.listen import Heard
from bot.voice.menu import KeypadMenu
from webhooks.fields import digits
from webhooks.forms import FormData, read_form
from webhooks.messages import _keep_running  # one way to keep a late turn running, messages and calls
from webhooks.services import Services
from webhooks.voice_speech import (
    VOICE,
    action_url,
    asked_language,
    business_of,
    call_script,
    listen,
    listen_again,
    number_language,
    spoken,
    template_context,
    text_for,
    twiml_response,
)

log = logging.getLogger("webhooks.voice")

router = APIRouter(tags=["twilio"])

#: Intents that put the caller through to a person (``<Dial>``) at once: a hand-off,
#: and what intents/safety.yaml hands to a person (an emergency, a complaint).
CONNECT_INTENTS: Final = frozenset({"human", "emergency", "complaint"})
#: Intents after which the call ends.
HANG_UP_INTENTS: Final = frozenset({"goodbye"})
#: How long a caller's words wait in the store for a confirmation or a slow turn's result.
_PENDING_TTL: Final = 3600.0
_KNOWN: Final = frozenset({"CallSid", "AccountSid", "From", "To", "SpeechResult", "Confidence", "Digits"})


# -- endpoints ----------------------------------------------------------------------
@router.post("/twilio/voice")
async def incoming_call(request: Request) -> Response:
    """A call comes in: greet inside a ``<Gather>``, re-prompt once, then goodbye."""
    services, form = await _signed(request)
    call = _call(form, turn=0)
    calls = CallLog(_records(services))
    await _store_call(services, calls.started(call.message_sid, caller=call.user, bot=call.bot,
                                              at=services.clock.now()))
    log.info("call", extra={"fields": {"sid": call.message_sid, "user": mask_phone(call.user)}})
    # A number for Spanish speakers (language_numbers in business.yaml) answers in Spanish.
    lang = number_language(services, call)
    greeting = spoken(services, "greeting", lang, name=None)
    menu = _menu(services).spoken()
    return twiml_response(listen(services, request, [greeting, menu], lang, n=1, menu=1))


@router.post("/twilio/voice/turn")
async def call_turn(request: Request) -> Response:
    """One thing the caller said or pressed: one turn of the conversation."""
    services, form = await _signed(request)
    n = _turn_number(request)
    sid = _required(form, "CallSid")
    lang = asked_language(services, request)
    heard = Heard.from_fields(speech=form.first("SpeechResult"), confidence=form.first("Confidence"),
                              digits=form.first("Digits"))
    if heard.keypad and request.query_params.get("menu") == "1":
        # The first answer of a call may be a key of the greeting's menu.
        heard = Heard(text=_menu(services).means(heard.text) or heard.text, keypad=True)
    if request.query_params.get("confirm") == "1":
        pending = await _store_call(services, _records(services).get(_pending_key(sid, n, "heard")))
        answer = heard.yes_no()
        if pending and answer is True:
            heard = Heard(text=pending)
        elif answer is False:
            return listen_again(services, request, n, ["voice_say_again"], lang)
    if not heard.text:
        return listen_again(services, request, n, ["voice_say_again"], lang)
    if heard.needs_confirming(services.settings.voice_min_confidence):
        # Never guess: say what we heard and let the caller confirm or correct it.
        await _store_call(services, _records(services).set(_pending_key(sid, n, "heard"), heard.text, ttl=_PENDING_TTL))
        question = spoken(services, "voice_confirm_heard", lang, heard=heard.text, choices=(YES, NO))
        return twiml_response(listen(services, request, [question], lang, n=n, confirm=1))
    msg = _call(form, turn=n, body=heard.text)
    return await _answer_turn(request, services, msg, wait=0)


@router.post("/twilio/voice/result")
async def call_result(request: Request) -> Response:
    """Serve a slow turn once it is done; "One moment" again (bounded) until then."""
    services, form = await _signed(request)
    lang = asked_language(services, request)
    n = _turn_number(request)
    sid = _required(form, "CallSid")
    said = await _store_call(services, _records(services).get(_pending_key(sid, n, "said")))
    if said is None:
        # Nothing waiting (expired, or never stored): ask again rather than guess.
        return listen_again(services, request, n, ["voice_too_slow"], lang)
    try:
        wait = max(1, int(request.query_params.get("w", "1")))
    except ValueError as exc:
        raise BadRequestError("w must be a number") from exc
    return await _answer_turn(request, services, _call(form, turn=n, body=said), wait=wait)


@router.post("/twilio/voice/dial")
async def dial_ended(request: Request) -> Response:
    """The hand-off ``<Dial>`` ended: done if answered; otherwise say so and offer a text back."""
    services, form = await _signed(request)
    lang = asked_language(services, request)
    n = _turn_number(request)
    call = _call(form, turn=n)
    status = (form.first("DialCallStatus") or "").strip().lower()
    if status == "completed":
        return twiml_response(call_script(services, lang).hang_up([spoken(services, "goodbye", lang)]))
    status = status or "failed"
    services.metrics.errors.labels("handoff_missed").inc()
    await _notify_staff(services, call, status=status, followup=False)
    texts = records_key(ConversationKey(Channel.VOICE, call.bot, call.user))
    if await _store_call(services, services.store.is_opted_out(texts)):
        # Opted out of texts: no text back to offer.
        missed = spoken(services, "voice_dial_missed", lang, status=status, offer=False)
        declined = spoken(services, "voice_followup_declined", lang)
        return twiml_response(call_script(services, lang).hang_up([missed, declined]))
    question = spoken(services, "voice_dial_missed", lang, status=status, offer=True, choices=(YES, NO))
    return twiml_response(listen(services, request, [question], lang, "followup", n=n))


@router.post("/twilio/voice/followup")
async def followup_answer(request: Request) -> Response:
    """"Would you like us to text you back?": yes texts the caller (unless opted out) and tells staff."""
    services, form = await _signed(request)
    lang = asked_language(services, request)
    n = _turn_number(request)
    call = _call(form, turn=n)
    heard = Heard.from_fields(speech=form.first("SpeechResult"), confidence=form.first("Confidence"),
                              digits=form.first("Digits"))
    answer = heard.yes_no()
    if answer is None:
        question = spoken(services, "voice_dial_missed", lang, status="again", offer=True, choices=(YES, NO))
        return twiml_response(listen(services, request, [question], lang, "followup", n=n))
    texts = records_key(ConversationKey(Channel.VOICE, call.bot, call.user))
    if answer and not await _store_call(services, services.store.is_opted_out(texts)):
        await _submit(services, SendRequest(
            key=texts, body=text_for(services, "handoff_followup"), purpose="handoff",
            idempotency_key=f"handoff-followup:{call.message_sid}",
        ))
        await _notify_staff(services, call, status="follow-up", followup=True)
        return twiml_response(call_script(services, lang).hang_up([spoken(services, "voice_followup_sent", lang)]))
    return twiml_response(call_script(services, lang).hang_up([spoken(services, "voice_followup_declined", lang)]))


@router.post("/twilio/voice/status", status_code=204)
async def call_status(request: Request) -> Response:
    """A call status callback: recorded per call; final statuses counted once, with the duration."""
    services, form = await _signed(request)
    sid = _required(form, "CallSid")
    status = _required(form, "CallStatus").lower()
    duration = digits(form, "CallDuration")  # ASCII digits only: "²" is a 400, not a 500
    if status not in FINAL_STATUSES:
        return Response(status_code=204)
    calls = CallLog(_records(services))
    try:
        first = await calls.finished(sid, status=status, duration=duration, at=services.clock.now(),
                                     caller=form.first("From") or "", bot=form.first("To") or "")
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return Response(status_code=503, headers={"Retry-After": "1"})
    if first:
        services.metrics.calls.labels(status).inc()
        if duration is not None:
            services.metrics.call_seconds.observe(duration)
    return Response(status_code=204)


# -- one turn -----------------------------------------------------------------------
async def _answer_turn(request: Request, services: Services, msg: InboundMessage, *, wait: int) -> Response:
    """Run (or pick up) the turn for ``msg`` within the reply budget, else hold the caller."""
    lang = asked_language(services, request)
    turn = asyncio.ensure_future(services.engine.handle(msg, deliver=_deliverer(request, services)))
    done, _ = await asyncio.wait({turn}, timeout=services.settings.reply_budget_seconds)
    if not done:
        if wait == 0:
            # The caller's words wait for the result request (not in the URL: they are private).
            await _store_call(services, _records(services).set(
                _pending_key(msg.message_sid, msg.turn or 0, "said"), msg.body, ttl=_PENDING_TTL))
            _keep_running(services, turn, msg)
        else:
            # The first request's turn is still running; this one only waited for it.
            turn.cancel()
        services.metrics.errors.labels("late_reply").inc()
        if wait >= services.settings.voice_max_redirects:
            return listen_again(services, request, msg.turn or 0, ["voice_too_slow"], lang)
        return twiml_response(call_script(services, lang).hold(
            [spoken(services, "voice_one_moment", lang)],
            redirect=action_url(request, "result", lang, n=msg.turn or 0, w=wait + 1)))
    try:
        handled: HandledTurn = turn.result()
    except TurnFailedError:
        # Nothing was saved: the same turn number may run again.
        return listen_again(services, request, msg.turn or 0, ["error"], lang)
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return listen_again(services, request, msg.turn or 0, ["error"], lang)
    if not handled.answer:
        # A retry whose cached answer expired: just listen for what comes next.
        return listen_again(services, request, (msg.turn or 0) + 1, ["voice_reprompt"], lang)
    return twiml_response(handled.answer)


def _deliverer(request: Request, services: Services) -> Deliver:
    async def deliver(msg: InboundMessage, result: TurnResult, state: ConversationState) -> str:
        # The conversation's language after this turn (bot/languages): the call speaks and listens in it.
        kept = state.data.get(LANGUAGE_KEY)
        return voice_answer(request, services, msg, result, kept if isinstance(kept, str) else None)

    return deliver


def voice_answer(
    request: Request, services: Services, msg: InboundMessage, result: TurnResult, lang: str | None = None
) -> str:
    """The TwiML for a finished turn: the replies spoken, then listen, connect or hang up.

    ``lang`` is the conversation's language: ``<Say>`` and ``<Gather>`` use its
    voice and language (``es-US``), and the next action URL carries it.
    """
    lines = [VOICE.prepare(reply).body for reply in result.replies]
    services.metrics.replies.labels(msg.channel.value, "twiml").inc(len(lines))
    script = call_script(services, lang)
    n = (msg.turn or 0) + 1
    if result.intent in CONNECT_INTENTS and result.replies:
        return script.connect(lines, number=_staff_number(services), caller_id=msg.bot,
                              timeout=services.settings.voice_dial_timeout_seconds,
                              action=action_url(request, "dial", lang, n=n))
    if result.intent in HANG_UP_INTENTS:
        return script.hang_up(lines)
    return listen(services, request, lines, lang, n=n)


# -- helpers ------------------------------------------------------------------------
async def _signed(request: Request) -> tuple[Services, FormData]:
    services: Services = request.app.state.services
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    if not services.settings.twilio_skip_signature_check:
        assert services.signatures is not None
        services.signatures.verify(request, form)
    return services, form


def _required(form: FormData, name: str) -> str:
    value = (form.first(name) or "").strip()
    if not value:
        raise BadRequestError(f"missing required field {name}")
    return value


def _turn_number(request: Request) -> int:
    raw = request.query_params.get("n", "")
    if not (raw.isascii() and raw.isdigit()) or not 0 < int(raw) < 10_000:
        raise BadRequestError("n (the call's turn number) must be a positive number")
    return int(raw)


def _call(form: FormData, *, turn: int, body: str = "") -> InboundMessage:
    """The engine's message for one request of a call (``CallSid`` + ``turn`` is its event id)."""
    user = _required(form, "From")
    bot = _required(form, "To")
    extra = {key: values[0] for key in form if key not in _KNOWN for values in (form.getall(key),)}
    return InboundMessage(
        message_sid=_required(form, "CallSid"), channel=Channel.VOICE, user=user, bot=bot, body=body,
        account_sid=form.first("AccountSid") or "", profile_name=form.first("CallerName") or None,
        extra=extra, turn=turn,
    )


def _records(services: Services) -> Records:
    """Where call records and a caller's pending words live: the ledger store, beside delivery records."""
    return Stores.beside(services.store).ledger


def _pending_key(sid: str, n: int, what: str) -> str:
    return f"call:{{{sid}}}:{what}:{n}"


def _menu(services: Services) -> KeypadMenu:
    path = Path(services.settings.intents_dir) / "voice.yaml"
    return memo(("voice_menu", fingerprint(path)), lambda: KeypadMenu.load(path))


def _staff_number(services: Services) -> str:
    if services.settings.staff_number:
        return services.settings.staff_number
    business = business_of(services)
    return str(business.phone_e164) if business is not None else ""


async def _notify_staff(services: Services, call: InboundMessage, *, status: str, followup: bool) -> None:
    staff = _staff_number(services)
    if not staff:
        log.warning("missed hand-off but no staff number is configured")
        return
    sender = services.settings.twilio_phone_number or call.bot
    notice = services.templates.render("handoff_missed_staff", Channel.SMS.value, user=call.user, status=status,
                                       followup=followup, recent="(phone call)", **template_context(services))
    await _submit(services, SendRequest(
        key=ConversationKey(Channel.SMS, sender, staff), body=notice, purpose="handoff",
        idempotency_key=f"handoff-missed:{call.message_sid}:{'followup' if followup else status}",
    ))


async def _submit(services: Services, request: SendRequest) -> None:
    try:
        await services.require_outbound().outbox.submit(request)
    except StoreError as exc:
        log.error("could not queue a hand-off message", extra={"fields": {"error": str(exc)}})


async def _store_call(services: Services, call: Any) -> Any:
    """Await a store call; a store outage is logged and counted, and the call goes on without it."""
    try:
        return await call
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return None

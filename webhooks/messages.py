"""``POST /twilio/messages``: the inbound webhook for SMS, MMS and WhatsApp.

Order of checks: content type (415), size (413), UTF-8 (400), signature (403),
fields by type (400, :mod:`webhooks.fields`); then the engine runs the turn
exactly once. Answers are always ``text/xml`` TwiML. A 2xx is only given for
a message whose answer is sent or durably owned; when the store is down or
hung the answer is a quick 503, so Twilio falls back to the fallback URL.

Example (what Twilio sends)::

    POST /twilio/messages
    X-Twilio-Signature: ...
    From=%2B14155550123&To=%2B15005550006&MessageSid=SM...&Body=hi
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from bot.channels import profile_of
from bot.engine import Deliver, HandledTurn, TurnFailedError
from bot.errors import StoreError
from bot.messages import InboundMessage, Reply, TurnResult
from bot.storage.base import ConversationState
from webhooks.forms import read_form
from webhooks.inbound import parse_inbound
from webhooks.services import Services
from webhooks.twiml import EMPTY_TWIML, TWIML_MEDIA_TYPE, render_twiml

log = logging.getLogger("webhooks.messages")

router = APIRouter(tags=["twilio"])

#: How long before REPLY_BUDGET_SECONDS a slow turn is answered empty (seconds).
LATE_ANSWER_MARGIN = 0.05


def twiml_answer(services: Services, msg: InboundMessage, result: TurnResult) -> str:
    """The TwiML answer for a turn: every reply as a ``<Message>``."""
    profile = profile_of(msg.channel)
    outgoing = [profile.prepare(reply) for reply in result.replies]
    costs: list[str] = []
    for out in outgoing:
        if out.segments is not None:
            services.metrics.segments.labels(out.segments.encoding).inc(out.segments.segments)
            costs.append(f"{out.segments.segments}x{out.segments.encoding}")
        services.metrics.replies.labels(msg.channel.value, "twiml").inc()
    if costs:
        # What each SMS reply costs: "2xGSM-7", "1xUCS-2" (one line per turn).
        log.info("replies", extra={"fields": {"sid": msg.message_sid, "via": "twiml", "segments": costs}})
    return render_twiml(outgoing)


_TWIML: Final = "twiml"
_LATE: Final = "late"
_SENDING: Final = "sending"
_REFUSED: Final = "refused"


class TurnRefusedError(StoreError):
    """A late turn given back to Twilio: the webhook answered 503 before it sent anything."""


class _AnswerRoute:
    """Decides once, atomically within the event loop, how a turn's replies go out.

    ``twiml``: in the HTTP answer (the turn finished within the budget).
    ``late``: the webhook answers an empty ``<Response/>`` once a recovery job
    owns the turn; the replies go through REST when the turn finishes.
    ``sending``: the REST replies have started (nothing can call them back).
    ``refused``: the webhook answered 503 (no recovery job could be queued);
    the turn must send nothing, and Twilio's retry runs it again.
    """

    __slots__ = ("route",)

    def __init__(self) -> None:
        self.route: str | None = None

    def claim(self, route: str) -> bool:
        if self.route is None:
            self.route = route
        return self.route == route

    def refuse(self) -> bool:
        """Stop the turn before it sends; False when its REST replies already started."""
        if self.route in (None, _LATE):
            self.route = _REFUSED
        return self.route == _REFUSED


def _deliverer(services: Services, route: _AnswerRoute) -> Deliver:
    rest: Deliver | None = services.rest_deliver

    async def deliver(msg: InboundMessage, result: TurnResult, state: ConversationState) -> str:
        if route.route == _REFUSED:
            raise TurnRefusedError("the webhook answered 503; Twilio's retry runs this turn again")
        # WhatsApp buttons exist only as content templates, which only REST can
        # send; the whole turn then goes by REST to keep its replies in order.
        wants_rest = profile_of(msg.channel).buttons and any(r.choices for r in result.replies)
        if rest is not None and (wants_rest or not route.claim(_TWIML)):
            route.route = _SENDING
            return await rest(msg, result, state)
        return twiml_answer(services, msg, result)

    return deliver


@router.post("/twilio/messages")
@router.post("/twilio/inbound", include_in_schema=False)  # alias: Twilio console examples
async def inbound_message(request: Request) -> Response:
    """Run the turn for one inbound message and answer with TwiML.

    A 2xx means the message is ours: its turn finished (the TwiML holds the
    replies), or it is still running and a durable recovery job owns it (the
    empty ``<Response/>``; the replies go out by REST, and the worker re-runs
    the turn if this process dies). When neither can be had in time (Redis
    down or hung: every Redis call is bounded by ``REDIS_TIMEOUT_SECONDS``)
    the answer is 503, so Twilio tries the number's fallback URL.
    """
    # The hot path: read the services directly rather than through a FastAPI
    # dependency (ServicesDep), whose per-request solving costs more than this.
    services: Services = request.app.state.services
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    if not services.settings.twilio_skip_signature_check:
        assert services.signatures is not None
        services.signatures.verify(request, form)
    msg = parse_inbound(form, idempotency_token=request.headers.get("i-twilio-idempotency-token"))
    route = _AnswerRoute()
    joined = asyncio.Event()
    turn = asyncio.ensure_future(services.engine.handle(msg, deliver=_deliverer(services, route),
                                                        joined=joined.set))
    outbox = services.outbound.outbox
    if services.rest_deliver is not None:  # None: TwiML only (tests)
        # Stop waiting a little before the budget: the empty answer must be on
        # its way by REPLY_BUDGET_SECONDS, not start then.
        wait = max(0.0, services.settings.reply_budget_seconds - LATE_ANSWER_MARGIN)
        done, _ = await asyncio.wait({turn}, timeout=wait)
        if not done:
            # Acknowledge only once the message holds its place in its conversation's
            # queue: what the user sends after our answer (a STOP) must queue behind it,
            # not overtake it. Nearly always so by now; the store bounds the wait.
            await _joined_or_done(joined, turn)
        if not turn.done() and (route.claim(_LATE) or route.route == _SENDING):
            _keep_running(services, turn, msg)
            services.metrics.errors.labels("late_reply").inc()
            try:
                # Before acknowledging: if this process dies now, the worker
                # re-runs the turn (the store's exactly-once check makes that
                # a no-op when it finished here).
                await outbox.submit_turn(msg, delay=services.settings.lock_lease_seconds + 1)
            except StoreError as exc:
                route.refuse()
                return _unavailable(services, "could not queue turn recovery; answering 503", exc)
            return Response(EMPTY_TWIML, media_type=TWIML_MEDIA_TYPE)
    try:
        handled = await turn
    except TurnFailedError as exc:
        body = _apology(services, msg) if exc.may_reply else EMPTY_TWIML
        return Response(body, media_type=TWIML_MEDIA_TYPE)
    except StoreError as exc:
        return _unavailable(services, "store unavailable; answering 503", exc)
    # A retry whose cached answer has expired gets "" from the engine: still TwiML.
    return Response(handled.answer or EMPTY_TWIML, media_type=TWIML_MEDIA_TYPE)


async def _joined_or_done(joined: asyncio.Event, turn: asyncio.Future[HandledTurn]) -> None:
    waiting: asyncio.Future[Any] = asyncio.ensure_future(joined.wait())
    either: set[asyncio.Future[Any]] = {waiting, turn}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()


def _unavailable(services: Services, what: str, exc: StoreError) -> Response:
    # Not acknowledged: Twilio tries the fallback URL (and the message is not ours to lose).
    log.error(what, extra={"fields": {"error": str(exc)}})
    services.metrics.errors.labels("store").inc()
    return Response(EMPTY_TWIML, status_code=503, media_type=TWIML_MEDIA_TYPE, headers={"Retry-After": "1"})


def _keep_running(services: Services, turn: asyncio.Future[HandledTurn], msg: InboundMessage) -> None:
    services.background.add(turn)

    def finished(task: asyncio.Future[HandledTurn]) -> None:
        services.background.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, TurnRefusedError):
            log.info("late turn stopped: answered 503, Twilio retries it", extra={"fields": {"sid": msg.message_sid}})
        elif exc is not None:
            # Run again by its recovery job, or (when none could be queued: the webhook answered 503) by
            # Twilio's retry of the message.
            log.warning("late turn failed; it runs again",
                        extra={"fields": {"sid": msg.message_sid, "error": str(exc)}})

    turn.add_done_callback(finished)


def _apology(services: Services, msg: InboundMessage) -> str:
    # The turn crashed and nothing was saved; say so briefly rather than
    # leave the user hanging. Not cached: a retry runs the turn again.
    try:
        text = services.templates.render("error", msg.channel.value)
    except Exception:  # a broken template must not turn an apology into a 500
        text = "Sorry, something went wrong on our side. Please try again in a moment."
    return render_twiml([profile_of(msg.channel).prepare(Reply(text=text))])

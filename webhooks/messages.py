"""``POST /twilio/messages``: the inbound webhook for SMS, MMS and WhatsApp.

Order of checks: content type (415), size (413), UTF-8 (400), signature (403),
required fields (400); then the engine runs the turn exactly once. Answers
are always ``text/xml`` TwiML. When the store is unreachable the answer is a
quick 503, so Twilio falls back to the fallback URL.

Example (what Twilio sends)::

    POST /twilio/messages
    X-Twilio-Signature: ...
    From=%2B14155550123&To=%2B15005550006&MessageSid=SM...&Body=hi
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

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


class _AnswerRoute:
    """Decides once, atomically within the event loop, how a turn's replies go out.

    ``twiml``: in the HTTP answer (the turn finished within the budget).
    ``late``: the webhook already answered an empty ``<Response/>``; the replies
    go through the REST outbox when the turn finishes.
    """

    __slots__ = ("route",)

    def __init__(self) -> None:
        self.route: str | None = None

    def claim(self, route: str) -> bool:
        if self.route is None:
            self.route = route
        return self.route == route


def _deliverer(services: Services, route: _AnswerRoute) -> Deliver:
    rest: Deliver | None = services.extras.get("rest_deliver")

    async def deliver(msg: InboundMessage, result: TurnResult, state: ConversationState) -> str:
        # WhatsApp buttons exist only as content templates, which only REST can
        # send; the whole turn then goes by REST to keep its replies in order.
        wants_rest = profile_of(msg.channel).buttons and any(r.choices for r in result.replies)
        if rest is not None and (wants_rest or not route.claim("twiml")):
            route.claim("late")
            return await rest(msg, result, state)
        return twiml_answer(services, msg, result)

    return deliver


@router.post("/twilio/messages")
@router.post("/twilio/inbound", include_in_schema=False)  # alias: Twilio console examples
async def inbound_message(request: Request) -> Response:
    """Run the turn for one inbound message and answer with TwiML.

    A turn not finished within ``REPLY_BUDGET_SECONDS`` is answered with an
    empty ``<Response/>`` and keeps running; its replies go out through the
    REST outbox, and a durable recovery job re-runs it if this process dies.
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
    turn = asyncio.ensure_future(services.engine.handle(msg, deliver=_deliverer(services, route)))
    outbox = services.extras.get("outbox")
    if outbox is not None and "rest_deliver" in services.extras:
        # Stop waiting a little before the budget: the empty answer must be on
        # its way by REPLY_BUDGET_SECONDS, not start then.
        wait = max(0.0, services.settings.reply_budget_seconds - LATE_ANSWER_MARGIN)
        done, _ = await asyncio.wait({turn}, timeout=wait)
        if not done and route.claim("late"):
            _keep_running(services, turn, msg)
            services.metrics.errors.labels("late_reply").inc()

            async def queue_recovery() -> None:
                # If this process dies before the turn ends, the worker re-runs it
                # (the store's exactly-once check makes that a no-op otherwise).
                try:
                    await outbox.submit_turn(msg, delay=services.settings.lock_lease_seconds + 1)
                except StoreError as exc:
                    # The turn still runs here; only the crash-recovery safety net is missing.
                    log.error("could not queue turn recovery", extra={"fields": {"error": str(exc)}})

            # Queued after the answer is sent (a background task), not before it.
            return Response(EMPTY_TWIML, media_type=TWIML_MEDIA_TYPE, background=BackgroundTask(queue_recovery))
    try:
        handled = await turn
    except TurnFailedError as exc:
        body = _apology(services, msg) if exc.may_reply else EMPTY_TWIML
        return Response(body, media_type=TWIML_MEDIA_TYPE)
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return Response(EMPTY_TWIML, status_code=503, media_type=TWIML_MEDIA_TYPE,
                        headers={"Retry-After": "1"})
    # A retry whose cached answer has expired gets "" from the engine: still TwiML.
    return Response(handled.answer or EMPTY_TWIML, media_type=TWIML_MEDIA_TYPE)


def _keep_running(services: Services, turn: asyncio.Future[HandledTurn], msg: InboundMessage) -> None:
    services.background.add(turn)

    def finished(task: asyncio.Future[HandledTurn]) -> None:
        services.background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("late turn failed; the recovery job will retry",
                        extra={"fields": {"sid": msg.message_sid, "error": str(task.exception())}})

    turn.add_done_callback(finished)


def _apology(services: Services, msg: InboundMessage) -> str:
    # The turn crashed and nothing was saved; say so briefly rather than
    # leave the user hanging. Not cached: a retry runs the turn again.
    try:
        text = services.templates.render("error", msg.channel.value)
    except Exception:  # a broken template must not turn an apology into a 500
        text = "Sorry, something went wrong on our side. Please try again in a moment."
    return render_twiml([profile_of(msg.channel).prepare(Reply(text=text))])

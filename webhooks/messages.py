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

import logging

from fastapi import APIRouter, Request, Response

from bot.engine import Deliver, TurnFailedError
from bot.errors import StoreError
from bot.messages import InboundMessage, Reply, TurnResult
from bot.outgoing import prepare
from bot.storage.base import ConversationState
from webhooks.forms import read_form
from webhooks.inbound import parse_inbound
from webhooks.services import Services, ServicesDep
from webhooks.twiml import EMPTY_TWIML, TWIML_MEDIA_TYPE, render_twiml

log = logging.getLogger("webhooks.messages")

router = APIRouter(tags=["twilio"])


def twiml_deliverer(services: Services) -> Deliver:
    """The TwiML answer for a turn: every reply as a ``<Message>``."""

    async def deliver(msg: InboundMessage, result: TurnResult, state: ConversationState) -> str:
        outgoing = [prepare(reply, msg.channel) for reply in result.replies]
        for out in outgoing:
            if out.segments is not None:
                services.metrics.segments.labels(out.segments.encoding).inc(out.segments.segments)
            services.metrics.replies.labels(msg.channel.value, "twiml").inc()
        return render_twiml(outgoing)

    return deliver


@router.post("/twilio/messages")
@router.post("/twilio/inbound", include_in_schema=False)  # alias: Twilio console examples
async def inbound_message(request: Request, services: ServicesDep) -> Response:
    """Run the turn for one inbound message and answer with TwiML."""
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    if not services.settings.twilio_skip_signature_check:
        assert services.signatures is not None
        services.signatures.verify(request, form)
    msg = parse_inbound(form, idempotency_token=request.headers.get("i-twilio-idempotency-token"))
    deliver = services.extras.get("deliver") or twiml_deliverer(services)
    try:
        handled = await services.engine.handle(msg, deliver=deliver)
    except TurnFailedError as exc:
        body = _apology(services, msg) if exc.may_reply else EMPTY_TWIML
        return Response(body, media_type=TWIML_MEDIA_TYPE)
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return Response(EMPTY_TWIML, status_code=503, media_type=TWIML_MEDIA_TYPE,
                        headers={"Retry-After": "1"})
    return Response(handled.answer, media_type=TWIML_MEDIA_TYPE)


def _apology(services: Services, msg: InboundMessage) -> str:
    # The turn crashed and nothing was saved; say so briefly rather than
    # leave the user hanging. Not cached: a retry runs the turn again.
    try:
        text = services.templates.render("error", msg.channel.value)
    except Exception:  # a broken template must not turn an apology into a 500
        text = "Sorry, something went wrong on our side. Please try again in a moment."
    return render_twiml([prepare(Reply(text=text), msg.channel)])

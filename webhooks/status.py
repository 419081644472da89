"""``POST /twilio/status``: Twilio's message status callbacks.

Checked like the inbound webhook: content type (415), size (413), UTF-8
(400), signature (403), then the fields (400 without ``MessageSid`` or
``MessageStatus``, with a SID not shaped like Twilio's, or an ``ErrorCode``
that is not ASCII digits). The work is
:class:`bot.outbound.status.DeliveryTracker`'s: a forward-only state per
message, idempotent per (MessageSid, MessageStatus), opt-outs and
unreachable numbers learnt from error codes, one template retry on 63016.
The answer is an empty 204; 503 when the store is down.

Example (what Twilio sends to the URL the sender gave it)::

    POST /twilio/status?ref=3f2a...
    X-Twilio-Signature: ...
    MessageSid=SM...&MessageStatus=undelivered&ErrorCode=30006&To=%2B1415...
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from bot.errors import BadRequestError, StoreError
from bot.outbound.status import StatusCallback
from webhooks.fields import MESSAGE_SID_PREFIXES, digits, text, twilio_sid
from webhooks.forms import read_form
from webhooks.services import ServicesDep

log = logging.getLogger("webhooks.status")

router = APIRouter(tags=["twilio"])


@router.post("/twilio/status", status_code=204)
async def status_callback(request: Request, services: ServicesDep) -> Response:
    """Record one status report for one message."""
    form = await read_form(request, max_bytes=services.settings.max_body_bytes)
    if not services.settings.twilio_skip_signature_check:
        assert services.signatures is not None
        services.signatures.verify(request, form)
    sid_field = "MessageSid" if form.first("MessageSid") else "SmsSid"
    sid = twilio_sid(form, sid_field, MESSAGE_SID_PREFIXES)
    status = text(form, "MessageStatus", line=True) or text(form, "SmsStatus", line=True)
    missing = [name for name, value in (("MessageSid", sid), ("MessageStatus", status)) if not value]
    if missing:
        raise BadRequestError(f"missing {', '.join(missing)}")
    assert sid is not None and status is not None
    callback = StatusCallback(
        sid=sid, status=status[:32], error_code=digits(form, "ErrorCode"),
        to=text(form, "To", line=True), from_=text(form, "From", line=True),
        ref=request.query_params.get("ref"),
    )
    try:
        await services.require_outbound().tracker.record(callback)
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return Response(status_code=503, headers={"Retry-After": "1"})
    return Response(status_code=204)

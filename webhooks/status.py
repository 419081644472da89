"""``POST /twilio/status``: Twilio's message status callbacks.

Checked like the inbound webhook: content type (415), size (413), UTF-8
(400), signature (403), then the fields (400 without ``MessageSid`` or
``MessageStatus``, or with a malformed ``ErrorCode``). The work is
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
    sid = form.first("MessageSid") or form.first("SmsSid")
    status = form.first("MessageStatus") or form.first("SmsStatus")
    missing = [name for name, value in (("MessageSid", sid), ("MessageStatus", status)) if not value]
    if missing:
        raise BadRequestError(f"missing {', '.join(missing)}")
    assert sid is not None and status is not None
    raw_code = (form.first("ErrorCode") or "").strip()
    if raw_code and not raw_code.isdigit():
        raise BadRequestError(f"ErrorCode must be a number, got {raw_code[:20]!r}")
    callback = StatusCallback(
        sid=sid, status=status, error_code=int(raw_code) if raw_code else None,
        to=form.first("To"), from_=form.first("From"), ref=request.query_params.get("ref"),
    )
    try:
        await services.require_outbound().tracker.record(callback)
    except StoreError as exc:
        log.error("store unavailable", extra={"fields": {"error": str(exc)}})
        services.metrics.errors.labels("store").inc()
        return Response(status_code=503, headers={"Retry-After": "1"})
    return Response(status_code=204)

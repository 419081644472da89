"""Mapping Twilio's inbound message form to the engine's :class:`InboundMessage`.

One function for SMS, MMS and WhatsApp: the channel comes from the
``whatsapp:`` prefix. Unknown fields are kept in ``extra`` (Twilio adds
fields without notice).

Example::

    msg = parse_inbound(form)
    msg.channel, msg.user, msg.body
"""

from __future__ import annotations

import math
from types import MappingProxyType

from bot.errors import BadRequestError
from bot.messages import Channel, InboundMessage, Location, Media, OptOutType
from webhooks.forms import FormData

_KNOWN = frozenset(
    {
        "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid",
        "From", "To", "Body", "NumMedia", "NumSegments", "ProfileName", "WaId",
        "ButtonPayload", "ButtonText", "MessageType", "OptOutType", "Latitude", "Longitude",
        "Address", "Label", "OriginalRepliedMessageSid",
    }
)
MAX_MEDIA = 10


def _required(form: FormData, name: str) -> str:
    value = (form.first(name) or "").strip()
    if not value:
        raise BadRequestError(f"missing required field {name}")
    return value


def _coordinate(form: FormData, name: str, bound: float) -> float:
    raw = form.first(name) or ""
    try:
        value = float(raw)
    except ValueError as exc:
        raise BadRequestError(f"field {name} is not a number: {raw[:20]!r}") from exc
    if not math.isfinite(value) or abs(value) > bound:
        raise BadRequestError(f"field {name} is out of range")
    return value


def parse_inbound(form: FormData, *, idempotency_token: str | None = None) -> InboundMessage:
    """Build the typed message; :class:`BadRequestError` (400) names what is missing."""
    from_ = _required(form, "From")
    to = _required(form, "To")
    sid = _required(form, "MessageSid")
    channel, user = Channel.from_address(from_)
    to_channel, bot = Channel.from_address(to)
    if to_channel is not channel:
        raise BadRequestError("From and To are on different channels")

    media: list[Media] = []
    for i in range(MAX_MEDIA):
        url = form.first(f"MediaUrl{i}")
        if not url:
            break
        media.append(Media(url=url, content_type=form.first(f"MediaContentType{i}") or ""))

    location = None
    if form.first("Latitude") and form.first("Longitude"):
        location = Location(
            latitude=_coordinate(form, "Latitude", 90.0),
            longitude=_coordinate(form, "Longitude", 180.0),
            address=form.first("Address") or None,
            label=form.first("Label") or None,
        )

    opt_out_raw = (form.first("OptOutType") or "").strip().upper()
    opt_out = OptOutType(opt_out_raw) if opt_out_raw in OptOutType.__members__ else None
    segments_raw = form.first("NumSegments") or ""
    extra = {
        key: values[0]
        for key in form
        if key not in _KNOWN and not key.startswith(("MediaUrl", "MediaContentType"))
        for values in (form.getall(key),)
    }
    return InboundMessage(
        message_sid=sid,
        channel=channel,
        user=user,
        bot=bot,
        body=form.first("Body") or "",
        account_sid=form.first("AccountSid") or "",
        messaging_service_sid=form.first("MessagingServiceSid") or None,
        media=tuple(media),
        location=location,
        button_payload=form.first("ButtonPayload") or None,
        button_text=form.first("ButtonText") or None,
        profile_name=form.first("ProfileName") or None,
        wa_id=form.first("WaId") or None,
        opt_out_type=opt_out,
        message_type=form.first("MessageType") or None,
        num_segments=int(segments_raw) if segments_raw.isdigit() else None,
        original_replied_message_sid=form.first("OriginalRepliedMessageSid") or None,
        idempotency_token=idempotency_token,
        extra=MappingProxyType(extra),
    )

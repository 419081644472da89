"""Mapping Twilio's inbound message form to the engine's :class:`InboundMessage`.

One function for SMS, MMS and WhatsApp: the channel comes from the
``whatsapp:`` prefix. A WhatsApp list-picker answer (``ListId``/``ListTitle``)
arrives as a button press (``button_payload``/``button_text``): both pick one
of the options the bot offered. Unknown fields are kept in ``extra`` (Twilio adds
fields without notice).

Example::

    msg = parse_inbound(form)
    msg.channel, msg.user, msg.body
"""

from __future__ import annotations

from types import MappingProxyType

from bot.errors import BadRequestError
from bot.messages import InboundMessage, Location, Media, OptOutType
from webhooks.fields import (
    ACCOUNT_SID_PREFIXES,
    MESSAGE_SID_PREFIXES,
    SERVICE_SID_PREFIXES,
    address,
    clean_text,
    decimal,
    digits,
    text,
    twilio_sid,
)
from webhooks.forms import FormData

_KNOWN = frozenset(
    {
        "MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "MessagingServiceSid",
        "From", "To", "Body", "NumMedia", "NumSegments", "ProfileName", "WaId",
        "ButtonPayload", "ButtonText", "MessageType", "OptOutType", "Latitude", "Longitude",
        "Address", "Label", "OriginalRepliedMessageSid", "ListId", "ListTitle",
    }
)
MAX_MEDIA = 10


def parse_inbound(form: FormData, *, idempotency_token: str | None = None) -> InboundMessage:
    """Build the typed message; :class:`BadRequestError` (400) names the bad or missing field.

    Every field is checked by type (:mod:`webhooks.fields`): addresses are
    E.164, SIDs Twilio-shaped, counts ASCII digits; free text loses its
    control characters before it can reach a template or TwiML.
    """
    channel, user = address(form, "From")
    to_channel, bot = address(form, "To", short_code=True)
    sid = twilio_sid(form, "MessageSid", MESSAGE_SID_PREFIXES, required=True)
    assert sid is not None
    if to_channel is not channel:
        raise BadRequestError("From and To are on different channels")
    account_sid = twilio_sid(form, "AccountSid", ACCOUNT_SID_PREFIXES) or ""
    service_sid = twilio_sid(form, "MessagingServiceSid", SERVICE_SID_PREFIXES)
    replied_to = twilio_sid(form, "OriginalRepliedMessageSid", MESSAGE_SID_PREFIXES)
    digits(form, "NumMedia")  # checked: MediaUrl{N} are read until the first gap
    num_segments = digits(form, "NumSegments")

    media: list[Media] = []
    for i in range(MAX_MEDIA):
        url = text(form, f"MediaUrl{i}", line=True)
        if not url:
            break
        media.append(Media(url=url, content_type=text(form, f"MediaContentType{i}", line=True) or ""))

    location = None
    latitude = decimal(form, "Latitude", bound=90.0)
    longitude = decimal(form, "Longitude", bound=180.0)
    if latitude is not None and longitude is not None:
        location = Location(
            latitude=latitude,
            longitude=longitude,
            address=text(form, "Address", line=True),
            label=text(form, "Label", line=True),
        )

    # A quick-reply press and a list-picker pick are the same to the engine:
    # the user chose one of the offered options (its id is the choice's payload).
    payload = text(form, "ButtonPayload", line=True)
    title = text(form, "ButtonText", line=True)
    if payload is None:
        payload = text(form, "ListId", line=True)
        title = text(form, "ListTitle", line=True)

    opt_out_raw = (form.first("OptOutType") or "").strip().upper()
    opt_out = OptOutType(opt_out_raw) if opt_out_raw in OptOutType.__members__ else None
    extra = {
        key: clean_text(values[0])
        for key in form
        if key not in _KNOWN and not key.startswith(("MediaUrl", "MediaContentType"))
        for values in (form.getall(key),)
    }
    return InboundMessage(
        message_sid=sid,
        channel=channel,
        user=user,
        bot=bot,
        body=text(form, "Body") or "",
        account_sid=account_sid,
        messaging_service_sid=service_sid,
        media=tuple(media),
        location=location,
        button_payload=payload,
        button_text=title,
        profile_name=text(form, "ProfileName", line=True),
        wa_id=text(form, "WaId", line=True),
        opt_out_type=opt_out,
        message_type=text(form, "MessageType", line=True),
        num_segments=num_segments,
        original_replied_message_sid=replied_to,
        idempotency_token=idempotency_token,
        extra=MappingProxyType(extra),
    )

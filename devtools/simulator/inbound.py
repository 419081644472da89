"""The simulated phone texts the bot, the way Twilio delivers a message.

:func:`send_inbound` records the user's message, applies Twilio's keyword
filter (STOP/START/HELP on SMS), opens the WhatsApp 24 h window, POSTs a
signed form webhook with the fields Twilio sends (see
``shared/twilio/example-payloads.json``) and reads the bot's answer the way
Twilio does: each TwiML ``<Message>`` becomes a message delivered to the
phone (with status lifecycle and callbacks), a ``text/plain`` answer is sent
as a message (a classic bug Twilio does not forgive), anything else is an
error code from Twilio's debugger (11200, 12100, 12300).

Example::

    result = await send_inbound(sim, user="+14155550123", bot="+15005550006", body="hi")
    result.status_code          # 200
    [m.body for m in result.replies]
    await send_inbound(sim, user="+14155550123", bot="+15005550006", channel=Channel.WHATSAPP,
                       button=Choice("confirm", "Confirm"))   # a quick-reply press
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

import httpx
import phonenumbers

from bot.compliance import keyword_type
from bot.messages import Channel, Choice, Location, Media, OptOutType
from bot.sms.segments import MAX_BODY_CHARS, body_length
from devtools.simulator.events import EventKind
from devtools.simulator.failures import Outcome
from devtools.simulator.message import MessageOrigin, SimMessage
from devtools.simulator.rules import API_VERSION
from devtools.simulator.state import Simulator

# Twilio's debugger codes for a webhook that went wrong.
HTTP_RETRIEVAL_FAILURE = 11200
DOCUMENT_PARSE_FAILURE = 12100
INVALID_CONTENT_TYPE = 12300


@dataclass(frozen=True, slots=True)
class InboundResult:
    """What happened when the phone texted the bot.

    ``replies`` are the messages the bot's answer produced (already recorded
    and on their way through the status lifecycle); ``keyword_reply`` is
    Twilio's own STOP/START/HELP confirmation, if one was sent.
    ``error_code`` is Twilio's debugger code when the webhook failed.
    """

    message: SimMessage
    form: Mapping[str, str]
    signature: str
    status_code: int | None = None
    content_type: str = ""
    answer: str = ""
    replies: tuple[SimMessage, ...] = ()
    keyword_reply: SimMessage | None = None
    error_code: int | None = None
    error: str | None = None
    elapsed: float = 0.0


@dataclass(frozen=True, slots=True)
class TwimlMessage:
    """One ``<Message>`` of a TwiML answer."""

    body: str
    media: tuple[str, ...] = ()
    to: str | None = None
    from_: str | None = None
    status_callback: str | None = None


def build_inbound_form(
    message: SimMessage,
    *,
    profile_name: str | None = None,
    opt_out_type: OptOutType | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The webhook form Twilio would POST for the inbound ``message``: the one builder of it.

    Fields follow real captures (example-payloads.json): SMS carries the
    geographic fields, WhatsApp ``ProfileName``/``WaId``/``MessageType``; a
    pressed button (``message.buttons[0]``) adds ``ButtonPayload``/``ButtonText``
    and ``OriginalRepliedMessageSid``; a location adds ``Latitude``/``Longitude``.
    ``extra`` adds fields, as Twilio does without notice. ``profile_name``
    defaults to ``"Dev Phone"``; :func:`devtools.webhook_client.inbound_form`
    builds the same form from plain values.

    Example::

        form = build_inbound_form(sim_message)
        form["MessageSid"], form["NumMedia"]   # ("SM...", "0")
    """
    channel = message.channel
    user, bot = message.user, message.bot or ""
    form: dict[str, str] = {}
    if channel is Channel.SMS:
        # Twilio sends the geographic fields for every SMS; they are blank
        # when unknown, and blank values must survive the signature check.
        form.update(
            ToCountry=_region(bot),
            ToState="",
            ToCity="",
            ToZip="",
            FromCountry=_region(user),
            FromState="",
            FromCity="",
            FromZip="",
        )
    form.update(
        SmsMessageSid=message.sid,
        NumMedia=str(len(message.media)),
        SmsSid=message.sid,
        SmsStatus="received",
        Body=message.body,
        To=message.to,
        NumSegments=message.num_segments,
        MessageSid=message.sid,
        AccountSid=message.account_sid,
        From=message.from_ or "",
        ApiVersion=API_VERSION,
    )
    if message.messaging_service_sid:
        form["MessagingServiceSid"] = message.messaging_service_sid
    for index, media in enumerate(message.media):
        form[f"MediaUrl{index}"] = media.url
        form[f"MediaContentType{index}"] = media.content_type
    if channel is Channel.WHATSAPP:
        form.update(
            ProfileName="Dev Phone" if profile_name is None else profile_name,
            WaId=user.lstrip("+"),
            MessageType=_message_type(message),
            ReferralNumMedia="0",
        )
        if message.buttons and message.list_button is not None:
            # A pick from a list picker: ListId is the item's id, Body its title.
            form.update(ListId=message.buttons[0].payload, ListTitle=message.buttons[0].title)
        elif message.buttons:
            form.update(ButtonText=message.buttons[0].title, ButtonPayload=message.buttons[0].payload)
        if message.replied_to_sid:
            form.update(OriginalRepliedMessageSid=message.replied_to_sid, OriginalRepliedMessageSender=message.to)
        if message.location is not None:
            loc = message.location
            form.update(Latitude=repr(loc.latitude), Longitude=repr(loc.longitude))
            if loc.address is not None:
                form["Address"] = loc.address
            if loc.label is not None:
                form["Label"] = loc.label
    if opt_out_type is not None:
        form["OptOutType"] = opt_out_type.value
    form.update(extra or {})
    return form


def parse_twiml(text: str) -> list[TwimlMessage]:
    """The ``<Message>`` elements of a TwiML answer, in order.

    Raises :class:`xml.etree.ElementTree.ParseError` on malformed XML or a
    root that is not ``<Response>`` (Twilio's 12100).

    >>> [m.body for m in parse_twiml("<Response><Message>Hi</Message></Response>")]
    ['Hi']
    """
    # The answer comes from our own bot, and expat refuses entity expansion
    # bombs, so the stdlib parser is enough here.
    root = ET.fromstring(text)  # noqa: S314
    if root.tag != "Response":
        raise ET.ParseError(f"root element is <{root.tag}>, not <Response>")
    messages: list[TwimlMessage] = []
    for element in root.iter("Message"):
        bodies = element.findall("Body")
        body = "".join(b.text or "" for b in bodies) if bodies else (element.text or "")
        media = tuple((m.text or "").strip() for m in element.findall("Media") if (m.text or "").strip())
        messages.append(
            TwimlMessage(
                body=body.strip(),
                media=media,
                to=element.get("to"),
                from_=element.get("from"),
                status_callback=element.get("statusCallback"),
            )
        )
    return messages


async def send_inbound(
    sim: Simulator,
    *,
    user: str,
    bot: str,
    channel: Channel = Channel.SMS,
    body: str = "",
    media: Sequence[Media] = (),
    location: Location | None = None,
    button: Choice | None = None,
    replied_to: str | None = None,
    profile_name: str | None = None,
    messaging_service_sid: str | None = None,
    extra: Mapping[str, str] | None = None,
    webhook_url: str | None = None,
    signature_url: str | None = None,
) -> InboundResult:
    """Text the bot from ``user`` to ``bot`` and deliver its answer to the phone.

    ``user`` and ``bot`` are bare E.164 numbers; ``channel`` picks SMS or
    WhatsApp. ``button`` is a quick-reply press (WhatsApp): its title becomes
    the body and ``replied_to`` defaults to the bot's latest message that
    offered it; when that message was a list picker, it is a pick from the
    list (``ListId``/``ListTitle`` instead of ``ButtonPayload``/``ButtonText``).
    ``webhook_url`` defaults to ``sim.webhook_url``; the signature
    covers ``signature_url`` (default ``sim.webhook_public_url`` or the
    webhook URL), the URL the bot believes Twilio called.

    Example::

        result = await send_inbound(sim, user="+14155550123", bot="+15005550006",
                                    channel=Channel.WHATSAPP,
                                    location=Location(51.5, -0.2, label="The Harrow Club"))
        result.status_code, [r.body for r in result.replies]
    """
    url = webhook_url or sim.webhook_url
    if not url:
        raise ValueError("no webhook URL: pass webhook_url or set Simulator(webhook_url=...)")
    if channel is Channel.SMS and (location is not None or button is not None):
        raise ValueError("locations and button presses exist on WhatsApp only")
    list_button = None
    if button is not None:
        body = body or button.title
        replied_to = replied_to or _offering_message(sim, user, bot, button)
        offered = sim.get_message(replied_to) if replied_to else None
        list_button = offered.list_button if offered is not None else None

    message = sim.record(
        SimMessage.inbound(
            sid=sim.new_sid("MM" if media else "SM"),
            account_sid=sim.account_sid,
            channel=channel,
            user=user,
            bot=bot,
            body=body,
            at=sim.clock.now(),
            media=tuple(media),
            messaging_service_sid=messaging_service_sid,
            buttons=(button,) if button else (),
            location=location,
            replied_to_sid=replied_to,
            list_button=list_button,
        )
    )
    # Any inbound opens WhatsApp's 24 h window (and makes this the sticky sender).
    sim.record_inbound_time(channel, user=user, bot=bot, at=message.date_created)

    keyword = twilio_keyword(sim, channel, user=user, bot=bot, body=body, button=bool(button))
    keyword_reply = apply_keyword(sim, keyword, channel, user, bot)

    form = build_inbound_form(
        message,
        profile_name=profile_name,
        opt_out_type=keyword if sim.config.advanced_opt_out else None,
        extra=extra,
    )
    signed_url = signature_url or sim.webhook_public_url or url
    signature = sim.sign(signed_url, form)
    base = InboundResult(message=message, form=MappingProxyType(form), signature=signature, keyword_reply=keyword_reply)

    started = time.perf_counter()
    try:
        response = await sim.post_signed(url, form, signature_url=signed_url)
    except httpx.HTTPError as exc:
        result = replace(base, error_code=HTTP_RETRIEVAL_FAILURE, error=f"{type(exc).__name__}: {exc}")
    else:
        result = _read_answer(sim, base, response, channel, user, bot)
    result = replace(result, elapsed=time.perf_counter() - started)
    sim.emit(
        EventKind.INBOUND_SENT,
        message,
        {
            "url": url,
            "status_code": result.status_code,
            "error_code": result.error_code,
            "error": result.error,
            "replies": [r.sid for r in result.replies],
            "elapsed_ms": round(result.elapsed * 1000, 1),
        },
    )
    return result


def twilio_keyword(sim: Simulator, channel: Channel, *, user: str, bot: str, body: str,
                   button: bool = False) -> OptOutType | None:
    """What Twilio's keyword filter makes of an inbound message (SMS only; not a button press).

    The bot's own rule (:func:`bot.compliance.keyword_type`): a single word,
    any case, surrounding punctuation ignored; "yes" only while opted out.
    """
    if channel not in sim.config.keyword_channels or button:
        return None
    return keyword_type(body, opted_out=sim.is_opted_out(channel, user=user, bot=bot))


def apply_keyword(
    sim: Simulator, keyword: OptOutType | None, channel: Channel, user: str, bot: str
) -> SimMessage | None:
    """Twilio's own handling: the opt-out list first, then its confirmation."""
    if keyword is OptOutType.STOP:
        sim.opt_out(channel, user=user, bot=bot)
    elif keyword is OptOutType.START:
        sim.opt_in(channel, user=user, bot=bot)
    if keyword is None or not sim.config.twilio_keyword_replies:
        return None
    text = sim.config.keyword_reply_texts.get(keyword.value)
    if not text:
        return None
    reply = sim.add_message(
        channel=channel,
        direction="outbound-reply",
        origin=MessageOrigin.TWILIO,
        from_=channel.address(bot),
        to=channel.address(user),
        body=text,
    )
    sim.start_lifecycle(reply)
    return reply


def _read_answer(
    sim: Simulator, base: InboundResult, response: httpx.Response, channel: Channel, user: str, bot: str
) -> InboundResult:
    content_type = response.headers.get("content-type", "")
    result = replace(base, status_code=response.status_code, content_type=content_type, answer=response.text)
    if response.status_code >= 400:
        return replace(result, error_code=HTTP_RETRIEVAL_FAILURE, error=f"HTTP {response.status_code}")
    text = response.text
    if not text.strip():
        return result
    mime = content_type.split(";")[0].strip().lower()
    if mime == "text/plain":
        # Twilio sends a plain-text answer to the user as a message.
        twiml = [TwimlMessage(body=text)]
    elif mime.endswith("xml"):
        try:
            twiml = parse_twiml(text)
        except ET.ParseError as exc:
            return replace(result, error_code=DOCUMENT_PARSE_FAILURE, error=str(exc))
    else:
        return replace(result, error_code=INVALID_CONTENT_TYPE, error=f"Invalid Content-Type: {content_type}")

    replies: list[SimMessage] = []
    for item in twiml:
        to = item.to or channel.address(user)
        from_ = item.from_ or channel.address(bot)
        reply = sim.add_message(
            channel=Channel.from_address(to)[0],
            direction="outbound-reply",
            origin=MessageOrigin.BOT,
            from_=from_,
            to=to,
            body=item.body,
            media=tuple(Media(u, "application/octet-stream") for u in item.media),
            status_callback=item.status_callback,
        )
        outcome: Outcome | None = None
        if sim.is_opted_out(reply.channel, user=reply.user, bot=reply.bot or ""):
            # A TwiML reply to an opted-out user (e.g. answering STOP) is refused.
            outcome = Outcome("failed", 21610)
        elif body_length(item.body) > MAX_BODY_CHARS:
            outcome = Outcome("failed", 21617)
        sim.start_lifecycle(reply, outcome)
        replies.append(reply)
    return replace(result, replies=tuple(replies))


def _offering_message(sim: Simulator, user: str, bot: str, button: Choice) -> str | None:
    """The bot's latest WhatsApp message that offered ``button`` to ``user``."""
    for message in reversed(sim.conversation(Channel.WHATSAPP, user=user, bot=bot)):
        if message.origin is MessageOrigin.BOT and any(b.payload == button.payload for b in message.buttons):
            return message.sid
    return None


def _message_type(message: SimMessage) -> str:
    if message.buttons and message.list_button is not None:
        return "interactive"  # UNCONFIRMED: what captures of list answers show varies
    if message.buttons:
        return "button"
    if message.location is not None:
        return "location"
    if message.media:
        kind = message.media[0].content_type.split("/")[0]
        return kind if kind in {"image", "video", "audio"} else "document"
    return "text"


def _region(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""

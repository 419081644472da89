"""Turning the engine's channel-neutral :class:`Reply` into what a channel sends.

SMS: choices become numbered options, text is normalised to GSM-7 where it
can be, capped at 1600 characters, and its segments counted. WhatsApp: light
formatting is kept; choices become numbered options here (quick-reply buttons
go out through a content template on the REST path, see docs/outbound.md).

Example::

    out = prepare(Reply(text="Book it?", choices=(Choice("yes", "Yes"),)), Channel.SMS)
    out.body, out.segments.segments
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import Channel, Reply, TemplateMessage
from bot.sms.render import finish_sms, numbered_options
from bot.sms.segments import MAX_BODY_CHARS, SegmentCount, count_segments


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message ready for TwiML or the REST API."""

    body: str = ""
    media: tuple[str, ...] = ()
    template: TemplateMessage | None = None
    segments: SegmentCount | None = None


def prepare(reply: Reply, channel: Channel) -> OutgoingMessage:
    """Channel-specific finishing of one reply."""
    if channel is Channel.SMS:
        body = finish_sms(reply.text, reply.choices)
        return OutgoingMessage(
            body=body, media=reply.media, template=reply.template, segments=count_segments(body)
        )
    body = "\n".join(p for p in (reply.text.strip(), numbered_options(reply.choices)) if p)
    if len(body) > MAX_BODY_CHARS:
        # Twilio refuses longer bodies on every channel (21617).
        body = body[: MAX_BODY_CHARS - 3].rstrip() + "..."
    return OutgoingMessage(body=body, media=reply.media, template=reply.template)

"""Finishing the engine's channel-neutral :class:`Reply` into what a channel sends.

One finisher per kind of channel; each channel's profile
(:mod:`bot.channels`) names the one it uses. SMS: choices become numbered
options, text is normalised to GSM-7 where it can be, capped at 1600
characters, and its segments counted. WhatsApp: light formatting is kept;
choices become numbered options here (quick-reply buttons go out through a
content template on the REST path, see docs/outbound.md). Voice: text
written for speech, choices as "say yes or press 1" (:mod:`bot.speech`).

Example::

    out = finish_sms_reply(Reply(text="Book it?", choices=(Choice("yes", "Yes"),)))
    out.body, out.segments.segments   # ('Book it?\\n1. Yes', 1)
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.messages import Reply, TemplateMessage
from bot.sms.render import finish_sms, numbered_options
from bot.sms.segments import MAX_BODY_CHARS, SegmentCount, count_segments
from bot.speech import spoken


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message ready for TwiML or the REST API."""

    body: str = ""
    media: tuple[str, ...] = ()
    template: TemplateMessage | None = None
    segments: SegmentCount | None = None


def finish_sms_reply(reply: Reply) -> OutgoingMessage:
    """SMS: numbered choices, GSM-7 where possible, at most 1600 characters, segments counted."""
    body = finish_sms(reply.text, reply.choices)
    return OutgoingMessage(body=body, media=reply.media, template=reply.template, segments=count_segments(body))


def finish_text_reply(reply: Reply) -> OutgoingMessage:
    """WhatsApp (TwiML): text as written, numbered choices, at most 1600 characters."""
    body = "\n".join(p for p in (reply.text.strip(), numbered_options(reply.choices)) if p)
    if len(body) > MAX_BODY_CHARS:
        # Twilio refuses longer bodies on every channel (21617).
        body = body[: MAX_BODY_CHARS - 3].rstrip() + "..."
    return OutgoingMessage(body=body, media=reply.media, template=reply.template)


def finish_spoken_reply(reply: Reply) -> OutgoingMessage:
    """Voice: text for a speech engine, choices as "say yes or press 1"; no media, no URLs."""
    return OutgoingMessage(body=spoken(reply.text, reply.choices))

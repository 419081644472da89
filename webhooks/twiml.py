"""Rendering outgoing messages as TwiML with the official builder.

The builder escapes any user-supplied text correctly; ``<Response/>`` (no
messages) is precomputed since most keyword answers are empty.

Example::

    render_twiml([OutgoingMessage(body="Hi <3 & bye")])
    # '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi &lt;3 &amp; bye</Message></Response>'
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.messaging_response import Body, Media, Message, MessagingResponse

from bot.outgoing import OutgoingMessage

EMPTY_TWIML: str = str(MessagingResponse().to_xml())
TWIML_MEDIA_TYPE = "text/xml"


def render_twiml(messages: Sequence[OutgoingMessage]) -> str:
    """One ``<Message>`` per outgoing message, in order; media as ``<Media>``."""
    if not messages:
        return EMPTY_TWIML
    response = MessagingResponse()
    for out in messages:
        if out.media:
            message = Message()
            if out.body:
                message.append(Body(out.body))
            for url in out.media[:10]:
                message.append(Media(url))
            response.append(message)
        else:
            response.message(out.body)
    return str(response.to_xml())

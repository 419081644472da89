"""Rendering outgoing messages as TwiML with the official builder.

The builder escapes ``<``, ``&`` and quotes, but writes control characters
as they are, which makes the XML ill-formed: every text is passed through
:func:`bot.sanitize.clean_text` first, whatever produced it (a template with
a user's name, the model). ``<Response/>`` (no messages) is precomputed since
most keyword answers are empty.

Example::

    render_twiml([OutgoingMessage(body="Hi <3 & bye")])
    # '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi &lt;3 &amp; bye</Message></Response>'
"""

from __future__ import annotations

from collections.abc import Sequence

from twilio.twiml.messaging_response import Body, Media, Message, MessagingResponse

from bot.outgoing import OutgoingMessage
from bot.sanitize import clean_text

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
                message.append(Body(clean_text(out.body)))
            for url in out.media[:10]:
                message.append(Media(clean_text(url)))
            response.append(message)
        else:
            response.message(clean_text(out.body))
    return str(response.to_xml())

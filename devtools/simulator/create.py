"""Twilio's rules for a "create message" request: recipient, sender, content, opt-outs, the WhatsApp window.

:func:`create_message` is what ``POST …/Messages.json`` does in the simulated
account (:meth:`Simulator.create_message <devtools.simulator.state.Simulator.create_message>`):
each refusal is a :class:`~devtools.simulator.errors.TwilioApiError` with
Twilio's code (21211 a bad ``To``, 21610 an opted-out recipient, 63016 outside
the 24 h window ...); an accepted request becomes a queued message whose
lifecycle starts at once (:mod:`~devtools.simulator.lifecycle`).

Example::

    msg = await create_message(sim, CreateMessageRequest(to="+14155550123", from_="+15005550006", body="Hi"))
    msg.status   # "queued"
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.messages import Channel, Media
from bot.sms.segments import MAX_BODY_CHARS, body_length
from devtools.simulator.errors import ERROR_MESSAGES, TwilioApiError
from devtools.simulator.failures import Outcome
from devtools.simulator.message import MessageOrigin, SimMessage
from devtools.simulator.request import CreateMessageRequest
from devtools.simulator.rules import CONTENT_LIMIT, MAGIC_FROM, MAGIC_TO, is_e164, parse_variables
from devtools.simulator.templates import ContentTemplate

if TYPE_CHECKING:
    from devtools.simulator.state import Simulator


async def create_message(sim: Simulator, request: CreateMessageRequest) -> SimMessage:
    """Apply Twilio's rules to a create request in ``sim``; start the status lifecycle.

    Raises :class:`TwilioApiError` with Twilio's code where Twilio answers
    4xx. Must run inside the event loop that will play the lifecycle.
    """
    to, channel, user = _check_to(request)
    sender = _resolve_sender(sim, request, channel, user)
    _check_from(request, channel, sender)
    body, variables, template = _content(sim, request, channel)
    if _blocked_by_opt_out(sim, channel, user, sender, request.messaging_service_sid):
        raise TwilioApiError(21610, ERROR_MESSAGES[21610])
    outcome = _window_outcome(sim, channel, user, sender, template)
    media = tuple(Media(url, _guess_type(url)) for url in request.media_urls)
    message = sim.add_message(
        channel=channel,
        direction="outbound-api",
        origin=MessageOrigin.BOT,
        from_=channel.address(sender),
        to=to,
        body=body,
        media=media,
        messaging_service_sid=request.messaging_service_sid,
        status_callback=request.status_callback or sim.config.default_status_callback,
        content_sid=request.content_sid,
        content_variables=variables,
        # Stored as the user sees them, so every consumer reads the final titles and ids.
        buttons=template.render_buttons(variables) if template and channel is Channel.WHATSAPP else (),
        list_button=template.list_button if template and channel is Channel.WHATSAPP else None,
    )
    sim.start_lifecycle(message, outcome)
    return message

def _check_to(request: CreateMessageRequest) -> tuple[str, Channel, str]:
    if not request.to:
        # UNCONFIRMED wording; 21604 is Twilio's "'To' phone number is required".
        raise TwilioApiError(21604, "A 'To' phone number is required.")
    channel, number = Channel.from_address(request.to)
    if number in MAGIC_TO:
        code, text = MAGIC_TO[number]
        raise TwilioApiError(code, text.format(n=number))
    if not is_e164(number):
        raise TwilioApiError(21211, f"Invalid 'To' Phone Number: {request.to}")
    return channel.address(number), channel, number

def _resolve_sender(sim: Simulator, request: CreateMessageRequest, channel: Channel, user: str) -> str:
    if request.from_:
        return Channel.from_address(request.from_)[1]
    service = request.messaging_service_sid
    if not service:
        raise TwilioApiError(21603, "A 'From' phone number or MessagingServiceSid is required.")
    pool = sim.sender_pool(service)
    # Sticky sender: the number this user last wrote to, as Twilio does.
    for bot in sim.bots_written_to(channel, user):
        if not pool or bot in pool:
            return bot
    if pool:
        return pool[0]
    raise TwilioApiError(
        21701,  # UNCONFIRMED code: Twilio's "Messaging Service does not exist".
        f"Messaging Service {service} is unknown to the simulator; register its senders "
        "with Simulator(messaging_services=...).",
    )

def _check_from(request: CreateMessageRequest, channel: Channel, sender: str) -> None:
    if sender in MAGIC_FROM:
        code, text = MAGIC_FROM[sender]
        raise TwilioApiError(code, text.format(n=sender))
    if not is_e164(sender):
        raise TwilioApiError(21212, f"The 'From' number {sender} is not a valid phone number.")
    if request.from_ and Channel.from_address(request.from_)[0] is not channel:
        raise TwilioApiError(63007, "Twilio could not find a Channel with the specified From address")

def _content(
    sim: Simulator, request: CreateMessageRequest, channel: Channel
) -> tuple[str, Mapping[str, str], ContentTemplate | None]:
    if request.content_sid:
        template = sim.templates.get(request.content_sid)
        if template is None:
            raise TwilioApiError(21655, f"The ContentSid {request.content_sid} is invalid.")
        variables = parse_variables(request.content_variables)
        if set(variables) != template.placeholders:
            raise TwilioApiError(
                63028,
                "Number of parameters provided does not match the expected number of parameters",
            )
        body = template.render(variables)
        if len(body) > CONTENT_LIMIT:
            raise TwilioApiError(63021, "Channel invalid content error: rendered content over 1024 characters")
        return body, variables, template
    body = request.body or ""
    if not body and not request.media_urls:
        raise TwilioApiError(21619, "A text message body or media urls must be specified.")
    # Measured as the bot's own limiter measures it (UTF-16 units).
    if body_length(body) > MAX_BODY_CHARS:
        raise TwilioApiError(21617, "The concatenated message body exceeds the 1600 character limit.")
    return body, {}, None

def _blocked_by_opt_out(sim: Simulator, channel: Channel, user: str, sender: str, service: str | None) -> bool:
    # Opting out of one number of a Messaging Service opts out of all of it.
    senders = {sender, *sim.sender_pool(service or "")}
    return any(sim.is_opted_out(channel, user=user, bot=s) for s in senders)

def _window_outcome(
    sim: Simulator, channel: Channel, user: str, sender: str, template: ContentTemplate | None
) -> Outcome | None:
    if channel is not Channel.WHATSAPP or sim.in_session(user=user, bot=sender):
        return None
    if template is not None and template.starts_conversations:
        return None
    if sim.config.window_errors == "reject":
        raise TwilioApiError(63016, ERROR_MESSAGES[63016])
    return Outcome("failed", 63016)


def _guess_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed or "application/octet-stream"

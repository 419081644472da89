"""The engine's vocabulary: what comes in, what goes out.

These types know nothing of HTTP or Twilio form fields; ``webhooks/`` maps a
request to an :class:`InboundMessage` and a :class:`TurnResult` back to TwiML.

Example::

    msg = InboundMessage(
        message_sid="SM1", channel=Channel.SMS,
        user="+14155550123", bot="+15005550006", body="hi",
    )
    msg.event_id      # "SM1": the exactly-once key
    Reply(text="Hello!", choices=(Choice("yes", "Yes"), Choice("no", "No")))
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


class Channel(enum.StrEnum):
    """A channel: its differences live in its profile (:mod:`bot.channels`). New channels are new members."""

    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"

    @property
    def prefix(self) -> str:
        """The address prefix Twilio uses for this channel (``whatsapp:``; none for SMS and calls)."""
        return _PREFIXES[self]

    def address(self, number: str) -> str:
        """Twilio's address for ``number`` on this channel."""
        return f"{self.prefix}{number}"

    @classmethod
    def from_address(cls, address: str) -> tuple[Channel, str]:
        """Split ``whatsapp:+1415...`` into (channel, number).

        >>> Channel.from_address("whatsapp:+14155550123")
        (<Channel.WHATSAPP: 'whatsapp'>, '+14155550123')
        """
        scheme, sep, rest = address.partition(":")
        if sep and scheme.lower() == "whatsapp":
            return cls.WHATSAPP, rest.strip()
        return cls.SMS, address.strip()


_PREFIXES: dict[Channel, str] = {Channel.SMS: "", Channel.WHATSAPP: "whatsapp:", Channel.VOICE: ""}


class OptOutType(enum.StrEnum):
    """Twilio Advanced Opt-Out's classification of an inbound keyword."""

    STOP = "STOP"
    START = "START"
    HELP = "HELP"


@dataclass(frozen=True, slots=True)
class Media:
    """One attachment: its URL and MIME type."""

    url: str
    content_type: str


@dataclass(frozen=True, slots=True)
class Location:
    """A shared location (WhatsApp), with the place's name when given."""

    latitude: float
    longitude: float
    address: str | None = None
    label: str | None = None


def _empty() -> Mapping[str, Any]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """One message a user sent to the bot, on any channel.

    ``user`` and ``bot`` are bare E.164 numbers; the channel says how to
    address them (:meth:`Channel.address`). ``extra`` keeps every form field
    we did not map, since Twilio adds fields without notice.

    ``message_sid`` is Twilio's id of what arrived: the ``MessageSid``, or on
    a call the ``CallSid`` (the same for every request of the call), with
    ``turn`` the call's turn counter. :attr:`event_id` joins them: the
    channel-neutral key of exactly-once processing.
    """

    message_sid: str
    channel: Channel
    user: str
    bot: str
    body: str = ""
    account_sid: str = ""
    messaging_service_sid: str | None = None
    media: tuple[Media, ...] = ()
    location: Location | None = None
    button_payload: str | None = None
    button_text: str | None = None
    profile_name: str | None = None
    wa_id: str | None = None
    opt_out_type: OptOutType | None = None
    message_type: str | None = None
    num_segments: int | None = None
    original_replied_message_sid: str | None = None
    idempotency_token: str | None = None
    extra: Mapping[str, str] = field(default_factory=_empty)
    turn: int | None = None

    @property
    def event_id(self) -> str:
        """The id of this inbound event, unique per delivery: ``SM…`` or ``CA…:3``.

        >>> InboundMessage("CA1", Channel.VOICE, "+14155550123", "+15005550006", turn=3).event_id
        'CA1:3'
        """
        return self.message_sid if self.turn is None else f"{self.message_sid}:{self.turn}"


@dataclass(frozen=True, slots=True)
class Choice:
    """One option offered to the user: a payload the bot understands and a title.

    On WhatsApp a choice becomes a quick-reply button; on SMS a numbered line
    ("Reply 1 to confirm").
    """

    payload: str
    title: str


@dataclass(frozen=True, slots=True)
class TemplateMessage:
    """An approved content template (WhatsApp ``ContentSid``) and its variables.

    ``language``: the variant to send (``intents/templates.yaml``'s ``es:``
    block); None, the template in the business's own language.
    """

    name: str
    variables: Mapping[str, str] = field(default_factory=_empty)
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One message the bot wants to send, before channel rendering.

    ``text`` is final user-facing text (already rendered from a template).
    ``choices`` are options; ``media`` are URLs; ``template`` asks for an
    approved content template instead of free-form text.
    """

    text: str = ""
    media: tuple[str, ...] = ()
    choices: tuple[Choice, ...] = ()
    template: TemplateMessage | None = None
    # Replies the compliance layer produced may go to opted-out users.
    compliance: bool = False


@dataclass(frozen=True, slots=True)
class TurnResult:
    """What one turn produced: replies plus facts for logs, tests and analytics.

    The answer a channel served for it (TwiML) is the engine's
    :class:`~bot.engine.HandledTurn`, cached so a retried delivery gets the same bytes.
    """

    replies: tuple[Reply, ...] = ()
    intent: str | None = None
    confidence: float | None = None
    entities: Mapping[str, Any] = field(default_factory=_empty)
    flow: str | None = None
    step: str | None = None

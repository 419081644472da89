"""A message as the simulated Twilio stores it (``SimMessage``) and who wrote it (``MessageOrigin``).

Example::

    msg = SimMessage.inbound(sid="SM" + "0" * 32, account_sid=sid, channel=Channel.SMS,
                             user="+14155550123", bot="+15005550006", body="hi", now=now)
    msg.to_api()["status"]
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any, Literal

from bot.messages import Channel, Choice, Location, Media
from bot.sms.segments import SegmentCount, count_segments
from devtools.simulator.rules import API_VERSION


class MessageOrigin(enum.StrEnum):
    """Who wrote a message, for a phone UI: the user, the bot, or Twilio itself."""

    USER = "user"
    BOT = "bot"
    TWILIO = "twilio"  # keyword confirmations Twilio sends on the bot's number


@dataclass(frozen=True, slots=True)
class SimMessage:
    """One message as the simulator knows it: an immutable snapshot.

    Every status change replaces the stored snapshot, so an event can carry
    the message as it was. :meth:`resource` is Twilio's JSON for the REST API;
    :meth:`to_dict` is the richer view for a dev phone (channel, origin,
    encoding and segments, buttons, location).
    """

    sid: str
    account_sid: str
    channel: Channel
    direction: Literal["inbound", "outbound-api", "outbound-reply"]
    origin: MessageOrigin
    from_: str | None  # Twilio address (``whatsapp:+1...``); None until a sender is known
    to: str
    body: str
    status: str
    date_created: datetime
    date_updated: datetime
    date_sent: datetime | None = None
    media: tuple[Media, ...] = ()
    error_code: int | None = None
    error_message: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    content_sid: str | None = None
    content_variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    buttons: tuple[Choice, ...] = ()
    location: Location | None = None
    segments: SegmentCount | None = None
    replied_to_sid: str | None = None
    # A WhatsApp list picker: the label of the button that opens ``buttons`` as
    # a list (outbound); on an inbound message, set when it picks from a list.
    list_button: str | None = None

    @classmethod
    def inbound(
        cls,
        *,
        sid: str,
        account_sid: str,
        channel: Channel,
        user: str,
        bot: str,
        body: str,
        at: datetime,
        media: tuple[Media, ...] = (),
        messaging_service_sid: str | None = None,
        buttons: tuple[Choice, ...] = (),
        location: Location | None = None,
        replied_to_sid: str | None = None,
        list_button: str | None = None,
    ) -> SimMessage:
        """A message ``user`` sent to ``bot``, as Twilio has it when it calls the webhook.

        Example::

            msg = SimMessage.inbound(sid="SM" + "0" * 32, account_sid=sid, channel=Channel.SMS,
                                     user="+14155550123", bot="+15005550006", body="hi", at=now)
            msg.from_, msg.status   # ('+14155550123', 'received')
        """
        return cls(
            sid=sid,
            account_sid=account_sid,
            channel=channel,
            direction="inbound",
            origin=MessageOrigin.USER,
            from_=channel.address(user),
            to=channel.address(bot),
            body=body,
            status="received",
            date_created=at,
            date_updated=at,
            date_sent=at,
            media=media,
            messaging_service_sid=messaging_service_sid,
            buttons=buttons,
            location=location,
            segments=count_segments(body) if body else None,
            replied_to_sid=replied_to_sid,
            list_button=list_button,
        )

    @property
    def user(self) -> str:
        """The simulated phone's bare number (the other party to the bot)."""
        address = self.from_ if self.direction == "inbound" else self.to
        return Channel.from_address(address or "")[1]

    @property
    def bot(self) -> str | None:
        """The bot's bare number, when known."""
        address = self.to if self.direction == "inbound" else self.from_
        return Channel.from_address(address)[1] if address else None

    @property
    def num_segments(self) -> str:
        """Twilio's ``num_segments``: a string; WhatsApp and MMS count as one."""
        if self.channel is Channel.WHATSAPP or self.media or self.segments is None:
            return "1"
        return str(self.segments.segments)

    def uri(self) -> str:
        """The resource's path, relative to the API host."""
        return f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The Message resource exactly as Twilio's REST API returns it.

        Every property of the spec's ``api.v2010.account.message`` schema is
        present, with Twilio's types (``num_segments`` and ``num_media`` are
        strings, dates are RFC 2822).
        """
        # Sent through a Messaging Service, Twilio answers before it picks a
        # sender: ``from`` is null and ``num_segments`` "0" until it leaves the
        # queue (spec example ``createWithMessagingService``).
        unassigned = self.messaging_service_sid is not None and self.status in {"accepted", "queued"}
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": rfc2822(self.date_created),
            "date_sent": rfc2822(self.date_sent) if self.date_sent else None,
            "date_updated": rfc2822(self.date_updated),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "from": None if unassigned else self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": str(len(self.media)),
            "num_segments": "0" if unassigned else self.num_segments,
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}/Media.json"},
            "to": self.to,
            "uri": self.uri(),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for a dev phone: the resource plus what Twilio hides."""
        seg = self.segments
        return {
            **self.resource(),
            "from": self.from_,
            "channel": self.channel.value,
            "origin": self.origin.value,
            "user": self.user,
            "bot": self.bot,
            "media": [{"url": m.url, "content_type": m.content_type} for m in self.media],
            "content_sid": self.content_sid,
            "content_variables": dict(self.content_variables),
            "buttons": [{"payload": b.payload, "title": b.title} for b in self.buttons],
            "list_button": self.list_button,
            "location": (
                None
                if self.location is None
                else {
                    "latitude": self.location.latitude,
                    "longitude": self.location.longitude,
                    "address": self.location.address,
                    "label": self.location.label,
                }
            ),
            "segments": (
                None
                if seg is None
                else {
                    "encoding": seg.encoding,
                    "segments": seg.segments,
                    "units": seg.units,
                    "characters": seg.characters,
                }
            ),
            "replied_to_sid": self.replied_to_sid,
        }



def rfc2822(moment: datetime) -> str:
    """A moment in Twilio's date format, e.g. ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    # Twilio's format: "Thu, 24 Aug 2023 05:01:45 +0000" (UTC, whole seconds).
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))

"""Sending Twilio-signed webhooks to the bot, exactly as Twilio does.

Used by ``bot chat``, transcript replay, the benchmarks and the tests: the
form is built with Twilio's field names, signed with the official SDK's
:class:`~twilio.request_validator.RequestValidator` over the public URL, and
POSTed as ``application/x-www-form-urlencoded``.

Example::

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://bot") as http:
        client = WebhookClient(http, auth_token="12345", public_base_url="https://bot.example.com")
        resp = await client.post("/twilio/messages", inbound_form(Channel.SMS, "+14155550123",
                                                                  "+15005550006", "hi"))
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from bot.messages import Channel, Choice, Location, Media
from devtools.simulator.inbound import build_inbound_form
from devtools.simulator.inbound import parse_twiml as parse_messages
from devtools.simulator.message import SimMessage

FormFields = Mapping[str, str] | Sequence[tuple[str, str]]


def new_sid(prefix: str = "SM") -> str:
    """A fresh Twilio-shaped SID: prefix + 32 hex characters."""
    return prefix + secrets.token_hex(16)


def inbound_form(
    channel: Channel,
    user: str,
    bot: str,
    body: str,
    *,
    message_sid: str | None = None,
    account_sid: str = "AC" + "0" * 32,
    media: Sequence[tuple[str, str]] = (),
    location: tuple[float, float] | None = None,
    button_payload: str | None = None,
    button_text: str | None = None,
    replied_to: str | None = None,
    profile_name: str | None = None,
    from_list: str | None = None,
) -> dict[str, str]:
    """The fields Twilio posts for one inbound message from ``user`` to ``bot`` (see FACTS.md).

    A shorthand for :func:`devtools.simulator.inbound.build_inbound_form`, the one
    builder of the form, for callers without a simulated message. ``media``
    is a list of (url, content type). ``location``, ``button_payload`` (Body
    and ``ButtonText`` are ``button_text``) and ``replied_to`` (the message
    the button belonged to) apply on WhatsApp only, as on Twilio. ``from_list``
    (the list's button label) makes the press a list-picker pick: ``ListId``
    and ``ListTitle`` instead of ``ButtonPayload`` and ``ButtonText``.

    >>> form = inbound_form(Channel.WHATSAPP, "+14155550123", "+15005550006", "",
    ...                     button_payload="yes", button_text="Yes, book")
    >>> form["From"], form["MessageType"], form["Body"], form["ButtonPayload"]
    ('whatsapp:+14155550123', 'button', 'Yes, book', 'yes')
    """
    whatsapp = channel is Channel.WHATSAPP
    button = Choice(button_payload, button_text or button_payload) if whatsapp and button_payload is not None else None
    if button is not None:
        body = button.title  # Twilio: Body = ButtonText
    message = SimMessage.inbound(
        sid=message_sid or new_sid("MM" if media else "SM"),
        account_sid=account_sid,
        channel=channel,
        user=user,
        bot=bot,
        body=body,
        at=datetime.now(UTC),  # the date is not in the form
        media=tuple(Media(url, content_type) for url, content_type in media),
        buttons=(button,) if button is not None else (),
        location=Location(*location) if whatsapp and location is not None else None,
        replied_to_sid=replied_to if whatsapp else None,
        list_button=from_list if button is not None else None,
    )
    return build_inbound_form(message, profile_name=profile_name or "")


class WebhookClient:
    """Signs and posts forms to the bot over any ``httpx.AsyncClient``."""

    def __init__(self, http: httpx.AsyncClient, *, auth_token: str, public_base_url: str | None = None) -> None:
        self.http = http
        self.validator = RequestValidator(auth_token)
        self.public_base_url = (public_base_url or str(http.base_url)).rstrip("/")

    def signed(self, path: str, fields: FormFields) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers Twilio would send for ``fields`` to ``path``."""
        items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        multi: dict[str, list[str]] = {}
        for key, value in items:
            multi.setdefault(key, []).append(value)
        signature = self.validator.compute_signature(self.public_base_url + path, _Multi(multi))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
            "User-Agent": "TwilioProxy/1.1",
        }
        return urlencode(items).encode(), headers

    async def post(self, path: str, fields: FormFields) -> httpx.Response:
        body, headers = self.signed(path, fields)
        return await self.http.post(path, content=body, headers=headers)


class _Multi(dict[str, list[str]]):
    # RequestValidator signs repeated keys through ``getall``.
    def getall(self, key: str) -> list[str]:
        return self[key]


def parse_twiml(xml: str) -> list[tuple[str, tuple[str, ...]]]:
    """The ``(body, media URLs)`` of each ``<Message>`` in a TwiML answer.

    A thin view over :func:`devtools.simulator.inbound.parse_twiml` (the one parser).

    >>> parse_twiml('<Response><Message>Hi</Message></Response>')
    [('Hi', ())]
    """
    if not xml.strip():
        return []
    return [(m.body, m.media) for m in parse_messages(xml)]

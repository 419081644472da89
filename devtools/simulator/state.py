"""The simulator's world: messages, opt-outs, WhatsApp windows, rules, events.

One :class:`Simulator` holds everything Twilio would know about a developer's
account: every message by SID, who opted out of which sender, when each
WhatsApp user last wrote (the 24-hour window), the content templates it can
render, the failures to inject, and the live subscribers (the dev phone).
It also applies Twilio's rules to a "create message" request
(:meth:`Simulator.create_message`) and plays each message's status lifecycle,
POSTing signed status callbacks like Twilio.

It is for development and tests only: state is in memory, bounded, and lost
on restart. Use it from one event loop (the one serving the simulator app).

Example::

    sim = Simulator(
        account_sid="AC" + "0" * 32, auth_token="secret", clock=FrozenClock(),
        templates=[ContentTemplate(sid="HX" + "1" * 32, name="reminder",
                                   body="Hi {{1}}, see you {{2}}?",
                                   buttons=(Choice("yes", "Yes"), Choice("no", "No")))],
        config=SimulatorConfig(step_delay=0),
    )
    sim.inject_failure(FailureRule(to="+14155550100", error_code=30003))
    with sim.subscribe() as events:
        msg = await sim.create_message(CreateMessageRequest(
            to="+14155550123", from_="+15005550006", body="Hello"))
        (await events.get()).kind   # EventKind.MESSAGE_CREATED
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import hashlib
import json
import logging
import mimetypes
import random
import re
import secrets
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from types import MappingProxyType, TracebackType
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import phonenumbers
from twilio.request_validator import RequestValidator

from bot.clock import Clock, SystemClock
from bot.errors import BotError
from bot.messages import Channel, Choice, Location, Media
from bot.sms.segments import MAX_BODY_CHARS, SegmentCount, body_length, count_segments
from bot.storage.base import ConversationKey
from devtools.simulator.account import SimAccount

T = TypeVar("T")

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

API_VERSION: Final = "2010-04-01"
MORE_INFO: Final = "https://www.twilio.com/docs/errors/{code}"
USER_AGENT: Final = "TwilioProxy/1.1"

# Twilio's default confirmation texts for the keywords on SMS.
DEFAULT_KEYWORD_REPLIES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "STOP": (
            "You have successfully been unsubscribed. You will not receive any more "
            "messages from this number. Reply START to resubscribe."
        ),
        "START": (
            "You have successfully been re-subscribed to messages from this number. "
            "Reply HELP for help. Reply STOP to unsubscribe. Msg&Data Rates May Apply."
        ),
        "HELP": "Reply STOP to unsubscribe. Msg&Data Rates May Apply.",
    }
)

# Text Twilio puts in ``error_message`` for the delivery-time codes we produce.
ERROR_MESSAGES: Final[Mapping[int, str]] = MappingProxyType(
    {
        21610: "Attempt to send to unsubscribed recipient",
        30003: "Unreachable destination handset",
        30004: "Message blocked",
        30005: "Unknown destination handset",
        30006: "Landline or unreachable carrier",
        30007: "Message filtered",
        30008: "Unknown error",
        30034: "Message blocked: unregistered A2P 10DLC number",
        63016: (
            "Failed to send freeform message because you are outside the allowed "
            "window. If you are using WhatsApp, please use a Message Template."
        ),
    }
)

# The magic test numbers (FACTS.md). Real Twilio honours them only with test
# credentials; the simulator always does, since the numbers are reserved.
MAGIC_FROM: Final[Mapping[str, tuple[int, str]]] = MappingProxyType(
    {
        "+15005550001": (
            21212,
            "The 'From' number {n} is not a valid phone number, shortcode, or alphanumeric sender ID.",
        ),
        "+15005550007": (
            21606,
            "The 'From' phone number {n} is not a valid, message-capable Twilio phone number for this destination.",
        ),
        "+15005550008": (21611, "This 'From' number ({n}) has exceeded the maximum number of queued messages"),
    }
)
MAGIC_TO: Final[Mapping[str, tuple[int, str]]] = MappingProxyType(
    {
        "+15005550001": (21211, "Invalid 'To' Phone Number: {n}"),
        "+15005550002": (
            21612,
            "The 'To' phone number: {n}, is not currently reachable using the 'From' phone number via SMS.",
        ),
        "+15005550003": (
            21408,
            "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {n}.",
        ),
        "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
        "+15005550009": (21614, "'To' number {n} is not a valid mobile number"),
    }
)

CONTENT_LIMIT: Final = 1024  # 63021, rendered template
WHATSAPP_WINDOW: Final = timedelta(hours=24)

_E164 = re.compile(r"^\+[1-9][0-9]{1,14}$")
_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
_SERVICE_SID = re.compile(r"^MG[0-9a-fA-F]{32}$")
_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class TwilioApiError(BotError):
    """A request the simulated Twilio refuses, with Twilio's code and HTTP status.

    :meth:`body` is Twilio's JSON error body, which the SDK turns into
    ``TwilioRestException(code=...)``.

    >>> TwilioApiError(21211, "Invalid 'To' Phone Number: 123").body()["more_info"]
    'https://www.twilio.com/docs/errors/21211'
    """

    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        """Twilio's error JSON: ``code``, ``message``, ``more_info``, ``status``."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }


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
            "date_created": _rfc2822(self.date_created),
            "date_sent": _rfc2822(self.date_sent) if self.date_sent else None,
            "date_updated": _rfc2822(self.date_updated),
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


def fill_placeholders(text: str, variables: Mapping[str, str]) -> str:
    """Twilio's ``{{name}}`` placeholders filled from ``variables``; unknown ones stay as written.

    >>> fill_placeholders("Hi {{1}}, {{ 2 }} {{3}}", {"1": "Ana", "2": "see you"})
    'Hi Ana, see you {{3}}'
    """
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class ContentTemplate:
    """A content template the simulated account owns (``ContentSid`` → text).

    ``body`` uses Twilio's ``{{1}}`` placeholders; ``buttons`` become
    WhatsApp quick replies (dropped on SMS, where Twilio sends only the text)
    and may use placeholders in their titles and ids too (generic quick
    replies such as ``quick_reply_2``).

    >>> t = ContentTemplate(sid="HX" + "a" * 32, name="hello", body="Hi {{1}}!",
    ...                     buttons=(Choice("{{2}}", "See you {{2}}"),))
    >>> t.render({"1": "Ana", "2": "soon"})
    'Hi Ana!'
    >>> t.render_buttons({"1": "Ana", "2": "soon"})
    (Choice(payload='soon', title='See you soon'),)
    """

    sid: str
    name: str
    body: str
    buttons: tuple[Choice, ...] = ()
    content_type: str = "twilio/text"

    def __post_init__(self) -> None:
        if not _CONTENT_SID.match(self.sid):
            raise ValueError(f"ContentSid must be HX + 32 hex digits, got {self.sid!r}")

    @property
    def placeholders(self) -> frozenset[str]:
        """The variable names the body and buttons use (``{"1", "2"}``); Twilio counts both."""
        texts = [self.body, *(b.title for b in self.buttons), *(b.payload for b in self.buttons)]
        return frozenset(name for text in texts for name in _PLACEHOLDER.findall(text))

    @property
    def starts_conversations(self) -> bool:
        """Whether WhatsApp accepts it outside the 24 h window (63016 otherwise)."""
        return self.content_type not in {"twilio/list-picker", "twilio/location"}

    def render(self, variables: Mapping[str, str]) -> str:
        """The text the user sees; unknown placeholders stay as written."""
        return fill_placeholders(self.body, variables)

    def render_buttons(self, variables: Mapping[str, str]) -> tuple[Choice, ...]:
        """The buttons the user sees: titles and ids with their placeholders filled."""
        return tuple(
            Choice(fill_placeholders(b.payload, variables), fill_placeholders(b.title, variables)) for b in self.buttons
        )


@dataclass(frozen=True, slots=True)
class FailureRule:
    """Make matching messages fail in their status callbacks.

    ``to`` matches the recipient's bare number (``None``: everyone);
    ``rate`` is the chance a matching message fails, drawn from the
    simulator's seeded RNG. ``failed`` ends right after ``queued`` (never
    sent); ``undelivered`` goes ``queued → sent → undelivered`` like a carrier
    rejection (30003 and friends).

    >>> FailureRule(to="+14155550100", error_code=30003).status
    'undelivered'
    """

    error_code: int = 30003
    status: Literal["failed", "undelivered"] = "undelivered"
    to: str | None = None
    channel: Channel | None = None
    rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")

    def matches(self, message: SimMessage) -> bool:
        """Whether this rule applies to ``message`` (before the dice roll)."""
        if self.channel is not None and message.channel is not self.channel:
            return False
        return self.to is None or Channel.from_address(self.to)[1] == message.user


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Behaviour switches; the defaults behave like Twilio.

    - ``step_delay``: seconds between status steps (tests use 0).
    - ``window_errors``: where 63016 shows. Twilio accepts the request (201)
      and fails the message in its status callback (``"callback"``, as in
      example-payloads.json's ``status_whatsapp_failed_63016``); ``"reject"``
      answers 400 with 63016 instead, for code that wants it synchronous.
    - ``twilio_keyword_replies``: Twilio answers STOP/START/HELP itself on SMS
      (``Settings.sms_keyword_replies == "twilio"``).
    - ``keyword_channels``: where Twilio's keyword filter runs (SMS only, as on
      Twilio; WhatsApp users block in the app, and the bot must stop itself).
    - ``advanced_opt_out``: add ``OptOutType`` to inbound webhooks, as a
      Messaging Service with Advanced Opt-Out does.
    - ``whatsapp_read``: WhatsApp messages go on to ``read`` after delivery.
    """

    step_delay: float = 0.05
    window_errors: Literal["callback", "reject"] = "callback"
    twilio_keyword_replies: bool = True
    keyword_channels: frozenset[Channel] = frozenset({Channel.SMS})
    keyword_reply_texts: Mapping[str, str] = field(default_factory=lambda: DEFAULT_KEYWORD_REPLIES)
    advanced_opt_out: bool = False
    whatsapp_read: bool = True
    default_status_callback: str | None = None
    webhook_timeout: float = 15.0  # Twilio gives up after 15 s (11200)
    max_messages: int = 10_000
    subscriber_queue_size: int = 1000


class EventKind(enum.StrEnum):
    """What a subscriber hears about."""

    MESSAGE_CREATED = "message.created"  # any direction, any origin
    STATUS_CHANGED = "message.status"
    INBOUND_SENT = "inbound.sent"  # a webhook POST to the bot finished
    CALLBACK_SENT = "callback.sent"  # a status callback POST finished
    OPT_OUT_CHANGED = "optout.changed"


@dataclass(frozen=True, slots=True)
class SimulatorEvent:
    """One thing that happened, with the message as it was at that moment."""

    kind: EventKind
    message: SimMessage | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for SSE or WebSocket frames."""
        return {
            "kind": self.kind.value,
            "message": self.message.to_dict() if self.message else None,
            "data": dict(self.data),
        }


class EventStream(Generic[T]):
    """A bounded live feed of events for one reader (a dev phone tab).

    A reader that stops reading loses its oldest events (``dropped`` counts
    them) rather than growing memory without limit. ``on_close`` lets the
    owner forget the stream.

    Example::

        with sim.subscribe() as events:
            async for event in events:
                await websocket.send_json(event.to_dict())
    """

    def __init__(self, maxsize: int, on_close: Callable[[EventStream[T]], None] | None = None) -> None:
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=maxsize)
        self._on_close = on_close
        self.dropped = 0
        self.closed = False

    def put(self, event: T | None) -> None:
        """Queue an event (``None`` ends the stream)."""
        if self._queue.full():
            # Drop the oldest: a phone would rather miss an old tick than the latest.
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    _put = put

    async def get(self) -> T:
        """Wait for the next event; raises :class:`EOFError` once closed."""
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # keep later readers from hanging
            raise EOFError("stream closed")
        return event

    def pending(self) -> list[T]:
        """Take every event queued so far, without waiting (a page's first paint)."""
        events: list[T] = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is None:
                self._queue.put_nowait(None)
                break
            events.append(event)
        return events

    def close(self) -> None:
        """Stop receiving; a pending :meth:`get` wakes up with EOFError."""
        if not self.closed:
            self.closed = True
            if self._on_close is not None:
                self._on_close(self)
            self.put(None)

    def __aiter__(self) -> EventStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None

    def __enter__(self) -> EventStream[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


Subscription = EventStream["SimulatorEvent"]


@dataclass(frozen=True, slots=True)
class CreateMessageRequest:
    """The parameters of ``POST .../Messages.json`` the simulator understands.

    Build it from the form the SDK sends with :meth:`from_pairs`; unknown
    parameters are ignored, like Twilio ignores what it does not use.
    """

    to: str | None = None
    from_: str | None = None
    messaging_service_sid: str | None = None
    body: str | None = None
    media_urls: tuple[str, ...] = ()
    content_sid: str | None = None
    content_variables: str | None = None  # a JSON string, as on the wire
    status_callback: str | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, Any]]) -> CreateMessageRequest:
        """Read a (repeatable-key) form: ``MediaUrl`` may occur up to 10 times.

        >>> CreateMessageRequest.from_pairs([("To", "+1415"), ("MediaUrl", "a"), ("MediaUrl", "b")]).media_urls
        ('a', 'b')
        """
        single: dict[str, str] = {}
        media: list[str] = []
        for key, value in pairs:
            if not isinstance(value, str):
                continue  # file uploads: Twilio's create takes none
            if key == "MediaUrl":
                media.append(value)
            else:
                single.setdefault(key, value)
        return cls(
            to=single.get("To") or None,
            from_=single.get("From") or None,
            messaging_service_sid=single.get("MessagingServiceSid") or None,
            body=single.get("Body"),
            media_urls=tuple(u for u in media if u),
            content_sid=single.get("ContentSid") or None,
            content_variables=single.get("ContentVariables") or None,
            status_callback=single.get("StatusCallback") or None,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a message's lifecycle ends when it does not end well.

    >>> Outcome("failed", 21610)
    Outcome(status='failed', error_code=21610)
    """

    status: Literal["failed", "undelivered"]
    error_code: int


class Simulator:
    """The simulated Twilio account: state, rules and the delivery lifecycle.

    Construct one per ``bot dev`` process (or per test); serve it with
    :func:`devtools.simulator.api.create_simulator_app`; text the bot with
    :func:`devtools.simulator.inbound.send_inbound`; watch it with
    :meth:`subscribe`. ``http_client`` carries status callbacks and inbound
    webhooks (tests pass one with ``httpx.ASGITransport``); ``clock`` decides
    the WhatsApp window and every date; ``seed`` makes SIDs and failure rates
    reproducible.

    Example::

        sim = Simulator(account_sid=sid, auth_token=token, clock=FrozenClock(),
                        webhook_url="http://127.0.0.1:8000/twilio/messages",
                        messaging_services={"MG" + "0" * 32: ["+15005550006"]})
        sim.register_template(ContentTemplate(sid="HX" + "1" * 32, name="hi", body="Hi {{1}}"))
        sim.inject_failure(FailureRule(to="+14155550100", error_code=30003))
        sim.opt_out(Channel.SMS, user="+14155550123", bot="+15005550006")
        await sim.drain()  # wait for pending status callbacks (tests)
        await sim.aclose()
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        webhook_url: str | None = None,
        webhook_public_url: str | None = None,
        clock: Clock | None = None,
        http_client: httpx.AsyncClient | None = None,
        config: SimulatorConfig | None = None,
        templates: Iterable[ContentTemplate] = (),
        messaging_services: Mapping[str, Sequence[str]] | None = None,
        seed: int | None = None,
    ) -> None:
        if not _ACCOUNT_SID.match(account_sid):
            raise ValueError("account_sid must be AC + 32 hex digits")
        self.account_sid = account_sid
        self.auth_token = auth_token
        # Where inbound webhooks go, and the URL the bot believes it serves
        # (its public base URL): the signature covers the latter.
        self.webhook_url = webhook_url
        self.webhook_public_url = webhook_public_url
        self.clock: Clock = clock or SystemClock()
        self.config = config or SimulatorConfig()
        self.validator = RequestValidator(auth_token)
        self._http = http_client
        self._owns_http = http_client is None
        self._rng = random.Random(seed)
        self._messages: dict[str, SimMessage] = {}
        self._opted_out: set[ConversationKey] = set()
        self._last_inbound: dict[ConversationKey, datetime] = {}
        self._templates: dict[str, ContentTemplate] = {}
        self._services: dict[str, tuple[str, ...]] = {}
        self._failures: list[FailureRule] = []
        self._subscribers: set[Subscription] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # Numbers, services, senders, approvals: what `bot connect` / `bot doctor` read and set.
        self.account = SimAccount(account_sid, self.clock, random.Random(seed))
        for template in templates:
            self.register_template(template)
        for service_sid, senders in (messaging_services or {}).items():
            self.register_messaging_service(service_sid, senders)

    @classmethod
    def from_settings(cls, settings: Settings, *, webhook_url: str, **kwargs: Any) -> Simulator:
        """A simulator with the bot's credentials and keyword-reply choice.

        The signature URL is ``public_base_url`` + the webhook's path when the
        bot has one configured, since that is the URL it validates against.

        Example::

            sim = Simulator.from_settings(settings, webhook_url="http://127.0.0.1:8000/twilio/messages",
                                          clock=clock)
        """
        public: str | None = None
        if settings.public_base_url:
            parts = urlsplit(webhook_url)
            base = urlsplit(settings.public_base_url.rstrip("/"))
            public = urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))
        config: SimulatorConfig = kwargs.pop("config", None) or SimulatorConfig()
        config = replace(config, twilio_keyword_replies=settings.sms_keyword_replies == "twilio")
        services = kwargs.pop("messaging_services", None)
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token.get_secret_value(),
            webhook_url=webhook_url,
            webhook_public_url=public,
            config=config,
            messaging_services=services,
            **kwargs,
        )

    # -- registries --------------------------------------------------------

    def register_template(self, template: ContentTemplate) -> None:
        """Make ``template.sid`` a known ``ContentSid`` (replacing any earlier one)."""
        self._templates[template.sid] = template

    @property
    def templates(self) -> Mapping[str, ContentTemplate]:
        """Known content templates by SID (read-only)."""
        return MappingProxyType(self._templates)

    def register_messaging_service(self, service_sid: str, senders: Sequence[str]) -> None:
        """Declare a Messaging Service and its sender pool (bare E.164 numbers)."""
        if not _SERVICE_SID.match(service_sid):
            raise ValueError("MessagingServiceSid must be MG + 32 hex digits")
        self._services[service_sid] = tuple(Channel.from_address(s)[1] for s in senders)

    def inject_failure(self, rule: FailureRule) -> FailureRule:
        """Add a failure rule (checked in order, first match wins); returns it."""
        self._failures.append(rule)
        return rule

    def clear_failures(self) -> None:
        """Remove every failure rule."""
        self._failures.clear()

    # -- opt-outs and the WhatsApp window ----------------------------------

    def opt_out(self, channel: Channel, *, user: str, bot: str) -> None:
        """Record that ``user`` opted out of ``bot`` on ``channel`` (21610 from now on)."""
        key = ConversationKey(channel, bot=bot, user=user)
        if key not in self._opted_out:
            self._opted_out.add(key)
            self.emit(EventKind.OPT_OUT_CHANGED, data=_key_data(key, opted_out=True))

    def opt_in(self, channel: Channel, *, user: str, bot: str) -> None:
        """Undo :meth:`opt_out` (a START word)."""
        key = ConversationKey(channel, bot=bot, user=user)
        if key in self._opted_out:
            self._opted_out.discard(key)
            self.emit(EventKind.OPT_OUT_CHANGED, data=_key_data(key, opted_out=False))

    def is_opted_out(self, channel: Channel, *, user: str, bot: str) -> bool:
        """Whether Twilio would refuse to send from ``bot`` to ``user``."""
        return ConversationKey(channel, bot=bot, user=user) in self._opted_out

    def record_inbound_time(self, channel: Channel, *, user: str, bot: str, at: datetime | None = None) -> None:
        """Open (or extend) the 24 h window; inbound messages do this themselves."""
        self._last_inbound[ConversationKey(channel, bot=bot, user=user)] = at or self.clock.now()

    def last_inbound(self, channel: Channel, *, user: str, bot: str) -> datetime | None:
        """When ``user`` last wrote to ``bot`` on ``channel``, if ever."""
        return self._last_inbound.get(ConversationKey(channel, bot=bot, user=user))

    def in_session(self, *, user: str, bot: str) -> bool:
        """Whether a free-form WhatsApp message may go to ``user`` now."""
        last = self.last_inbound(Channel.WHATSAPP, user=user, bot=bot)
        return last is not None and self.clock.now() - last <= WHATSAPP_WINDOW

    # -- messages ------------------------------------------------------------

    def get_message(self, sid: str) -> SimMessage | None:
        """The current snapshot of one message."""
        return self._messages.get(sid)

    def messages(self) -> list[SimMessage]:
        """Every message, oldest first."""
        return list(self._messages.values())

    def conversation(self, channel: Channel, *, user: str, bot: str | None = None) -> list[SimMessage]:
        """One phone's thread, oldest first: what a dev phone shows."""
        return [
            m
            for m in self._messages.values()
            if m.channel is channel and m.user == user and (bot is None or m.bot in (bot, None))
        ]

    def delete_message(self, sid: str) -> bool:
        """Forget a message (``DELETE``); its pending callbacks stop."""
        return self._messages.pop(sid, None) is not None

    def new_sid(self, prefix: str) -> str:
        """A fresh resource SID: ``prefix`` + 32 hex digits, from the seeded RNG."""
        return f"{prefix}{self._rng.getrandbits(128):032x}"

    def record(self, message: SimMessage) -> SimMessage:
        """Store a message and tell subscribers (used by the API and inbound)."""
        self._messages[message.sid] = message
        while len(self._messages) > self.config.max_messages:
            self._messages.pop(next(iter(self._messages)))
        self.emit(EventKind.MESSAGE_CREATED, message)
        return message

    def add_message(
        self,
        *,
        channel: Channel,
        direction: Literal["inbound", "outbound-api", "outbound-reply"],
        origin: MessageOrigin,
        from_: str,
        to: str,
        body: str,
        media: tuple[Media, ...] = (),
        messaging_service_sid: str | None = None,
        status_callback: str | None = None,
        content_sid: str | None = None,
        content_variables: Mapping[str, str] | None = None,
        buttons: tuple[Choice, ...] = (),
        location: Location | None = None,
        replied_to_sid: str | None = None,
    ) -> SimMessage:
        """Create, store and announce a message: SID, dates and segments filled in.

        Inbound messages start ``received``; others ``queued`` (start their
        lifecycle with :meth:`start_lifecycle`).

        Example::

            sim.add_message(channel=Channel.SMS, direction="outbound-reply", origin=MessageOrigin.BOT,
                            from_="+15005550006", to="+14155550123", body="Hi")
        """
        now = self.clock.now()
        inbound = direction == "inbound"
        return self.record(
            SimMessage(
                sid=self.new_sid("MM" if media else "SM"),
                account_sid=self.account_sid,
                channel=channel,
                direction=direction,
                origin=origin,
                from_=from_,
                to=to,
                body=body,
                status="received" if inbound else "queued",
                date_created=now,
                date_updated=now,
                date_sent=now if inbound else None,
                media=media,
                messaging_service_sid=messaging_service_sid,
                status_callback=status_callback,
                content_sid=content_sid,
                content_variables=MappingProxyType(dict(content_variables or {})),
                buttons=buttons,
                location=location,
                segments=count_segments(body) if body else None,
                replied_to_sid=replied_to_sid,
            )
        )

    async def create_message(self, request: CreateMessageRequest) -> SimMessage:
        """Apply Twilio's rules to a create request; start the status lifecycle.

        Raises :class:`TwilioApiError` with Twilio's code where Twilio answers
        4xx. Must run inside the event loop that will play the lifecycle.
        """
        to, channel, user = self._check_to(request)
        sender = self._resolve_sender(request, channel, user)
        self._check_from(request, channel, sender)
        body, variables, template = self._content(request, channel)
        if self._blocked_by_opt_out(channel, user, sender, request.messaging_service_sid):
            raise TwilioApiError(21610, ERROR_MESSAGES[21610])
        outcome = self._window_outcome(channel, user, sender, template)
        media = tuple(Media(url, _guess_type(url)) for url in request.media_urls)
        message = self.add_message(
            channel=channel,
            direction="outbound-api",
            origin=MessageOrigin.BOT,
            from_=channel.address(sender),
            to=to,
            body=body,
            media=media,
            messaging_service_sid=request.messaging_service_sid,
            status_callback=request.status_callback or self.config.default_status_callback,
            content_sid=request.content_sid,
            content_variables=variables,
            # Stored as the user sees them, so every consumer reads the final titles and ids.
            buttons=template.render_buttons(variables) if template and channel is Channel.WHATSAPP else (),
        )
        self.start_lifecycle(message, outcome)
        return message

    def _check_to(self, request: CreateMessageRequest) -> tuple[str, Channel, str]:
        if not request.to:
            # UNCONFIRMED wording; 21604 is Twilio's "'To' phone number is required".
            raise TwilioApiError(21604, "A 'To' phone number is required.")
        channel, number = Channel.from_address(request.to)
        if number in MAGIC_TO:
            code, text = MAGIC_TO[number]
            raise TwilioApiError(code, text.format(n=number))
        if not _is_e164(number):
            raise TwilioApiError(21211, f"Invalid 'To' Phone Number: {request.to}")
        return channel.address(number), channel, number

    def _resolve_sender(self, request: CreateMessageRequest, channel: Channel, user: str) -> str:
        if request.from_:
            return Channel.from_address(request.from_)[1]
        service = request.messaging_service_sid
        if not service:
            raise TwilioApiError(21603, "A 'From' phone number or MessagingServiceSid is required.")
        pool = self._services.get(service, ())
        # Sticky sender: the number this user last wrote to, as Twilio does.
        recent = [
            key.bot
            for key, _ in sorted(self._last_inbound.items(), key=lambda kv: kv[1], reverse=True)
            if key.channel is channel and key.user == user
        ]
        for bot in recent:
            if not pool or bot in pool:
                return bot
        if pool:
            return pool[0]
        raise TwilioApiError(
            21701,  # UNCONFIRMED code: Twilio's "Messaging Service does not exist".
            f"Messaging Service {service} is unknown to the simulator; register its senders "
            "with Simulator(messaging_services=...).",
        )

    def _check_from(self, request: CreateMessageRequest, channel: Channel, sender: str) -> None:
        if sender in MAGIC_FROM:
            code, text = MAGIC_FROM[sender]
            raise TwilioApiError(code, text.format(n=sender))
        if not _is_e164(sender):
            raise TwilioApiError(21212, f"The 'From' number {sender} is not a valid phone number.")
        if request.from_ and Channel.from_address(request.from_)[0] is not channel:
            raise TwilioApiError(63007, "Twilio could not find a Channel with the specified From address")

    def _content(
        self, request: CreateMessageRequest, channel: Channel
    ) -> tuple[str, Mapping[str, str], ContentTemplate | None]:
        if request.content_sid:
            template = self._templates.get(request.content_sid)
            if template is None:
                raise TwilioApiError(21655, f"The ContentSid {request.content_sid} is invalid.")
            variables = _parse_variables(request.content_variables)
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

    def _blocked_by_opt_out(self, channel: Channel, user: str, sender: str, service: str | None) -> bool:
        # Opting out of one number of a Messaging Service opts out of all of it.
        senders = {sender, *self._services.get(service or "", ())}
        return any(self.is_opted_out(channel, user=user, bot=s) for s in senders)

    def _window_outcome(
        self, channel: Channel, user: str, sender: str, template: ContentTemplate | None
    ) -> Outcome | None:
        if channel is not Channel.WHATSAPP or self.in_session(user=user, bot=sender):
            return None
        if template is not None and template.starts_conversations:
            return None
        if self.config.window_errors == "reject":
            raise TwilioApiError(63016, ERROR_MESSAGES[63016])
        return Outcome("failed", 63016)

    # -- lifecycle and callbacks -------------------------------------------

    def start_lifecycle(self, message: SimMessage, outcome: Outcome | None = None) -> None:
        """Play ``queued → sent → delivered (→ read)`` or an injected failure."""
        if outcome is None:
            outcome = self._injected_failure(message)
        steps: list[tuple[str, int | None]] = [(message.status, None)]
        if outcome is not None and outcome.status == "failed":
            steps.append(("failed", outcome.error_code))
        elif outcome is not None:
            steps += [("sent", None), ("undelivered", outcome.error_code)]
        else:
            steps += [("sent", None), ("delivered", None)]
            if message.channel is Channel.WHATSAPP and self.config.whatsapp_read:
                steps.append(("read", None))
        self.spawn(self._run_lifecycle(message.sid, steps))

    def _injected_failure(self, message: SimMessage) -> Outcome | None:
        for rule in self._failures:
            if rule.matches(message) and (rule.rate >= 1.0 or self._rng.random() < rule.rate):
                return Outcome(rule.status, rule.error_code)
        return None

    async def _run_lifecycle(self, sid: str, steps: list[tuple[str, int | None]]) -> None:
        for status, error_code in steps:
            # Sleeping even at 0 yields, so the 201 is on its way before the
            # first callback, as with Twilio (which still races, see FACTS.md).
            await asyncio.sleep(self.config.step_delay)
            message = self._set_status(sid, status, error_code)
            if message is None:
                return  # deleted meanwhile
            if message.status_callback:
                await self._post_status_callback(message)

    def _set_status(self, sid: str, status: str, error_code: int | None) -> SimMessage | None:
        current = self._messages.get(sid)
        if current is None or current.status == status:
            return current
        now = self.clock.now()
        updated = replace(
            current,
            status=status,
            date_updated=now,
            date_sent=current.date_sent or (now if status in {"sent", "delivered", "undelivered", "read"} else None),
            error_code=error_code if error_code is not None else current.error_code,
            error_message=(
                ERROR_MESSAGES.get(error_code, f"Error {error_code}")
                if error_code is not None
                else current.error_message
            ),
        )
        self._messages[sid] = updated
        self.emit(EventKind.STATUS_CHANGED, updated)
        return updated

    def status_callback_params(self, message: SimMessage) -> dict[str, str]:
        """The form Twilio POSTs to a StatusCallback for ``message``'s status now."""
        params = {
            "SmsSid": message.sid,
            "SmsStatus": message.status,
            "MessageStatus": message.status,
            "To": message.to,
            "MessageSid": message.sid,
            "AccountSid": message.account_sid,
            "From": message.from_ or "",
            "ApiVersion": API_VERSION,
        }
        if message.messaging_service_sid:
            params["MessagingServiceSid"] = message.messaging_service_sid
        if message.error_code is not None and message.status in {"failed", "undelivered"}:
            params["ErrorCode"] = str(message.error_code)
        if message.channel is Channel.WHATSAPP:
            params["ChannelPrefix"] = message.channel.value
            params["ChannelToAddress"] = message.user
            if message.status == "read":
                params["EventType"] = "READ"
            if message.status in {"failed", "undelivered"}:
                # Captures show the sender's channel install on failures only.
                digest = hashlib.sha256((message.bot or "").encode()).hexdigest()
                params["ChannelInstallSid"] = "XE" + digest[:32]
        elif message.status == "delivered":
            params["RawDlrDoneDate"] = self.clock.now().strftime("%y%m%d%H%M")
        return params

    async def _post_status_callback(self, message: SimMessage) -> None:
        url = message.status_callback or ""
        params = self.status_callback_params(message)
        data: dict[str, Any] = {"url": url, "status": message.status}
        try:
            response = await self.post_signed(url, params)
            data["status_code"] = response.status_code
        except httpx.HTTPError as exc:
            # Twilio does not retry status callbacks; it logs and moves on.
            log.warning("status callback to %s failed: %s", url, exc)
            data["error"] = str(exc)
        self.emit(EventKind.CALLBACK_SENT, message, data)

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """``X-Twilio-Signature`` for a form POST to ``url``, via the official SDK."""
        return str(self.validator.compute_signature(url, dict(params)))

    async def post_signed(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        signature_url: str | None = None,
    ) -> httpx.Response:
        """POST a form like Twilio: signed over ``signature_url`` (default ``url``)."""
        headers = {
            "X-Twilio-Signature": self.sign(signature_url or url, params),
            "User-Agent": USER_AGENT,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        # A list of pairs keeps blank values (``Body=``), which the signature covers.
        return await self.http.post(
            url,
            content=urlencode(list(params.items())).encode(),
            headers=headers,
            timeout=self.config.webhook_timeout,
        )

    @property
    def http(self) -> httpx.AsyncClient:
        """The client for callbacks and webhooks (created on first use if not given)."""
        if self._http is None:
            self._http = httpx.AsyncClient()
        return self._http

    # -- events and tasks ----------------------------------------------------

    def subscribe(self) -> Subscription:
        """A new live feed of events; close it (or use ``with``) when done."""
        subscription: Subscription = EventStream(self.config.subscriber_queue_size, self._subscribers.discard)
        self._subscribers.add(subscription)
        return subscription

    def emit(self, kind: EventKind, message: SimMessage | None = None, data: Mapping[str, Any] | None = None) -> None:
        """Publish an event to every subscriber (the simulator and inbound use it)."""
        event = SimulatorEvent(kind, message, MappingProxyType(dict(data or {})))
        for subscription in list(self._subscribers):
            subscription._put(event)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run background work the simulator owns (awaited by :meth:`drain`)."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("simulator task failed", exc_info=task.exception())

    async def drain(self) -> None:
        """Wait until every lifecycle (and the callbacks it posts) has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel pending work, close subscriptions and the owned HTTP client."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for subscription in list(self._subscribers):
            subscription.close()
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None


def _is_e164(number: str) -> bool:
    if not _E164.match(number):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.is_possible_number(parsed))


def _parse_variables(raw: str | None) -> dict[str, str]:
    if raw is None:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(isinstance(v, str | int | float) for v in value.values()):
        raise TwilioApiError(21656, "The ContentVariables Parameter is invalid")
    return {str(k): str(v) for k, v in value.items()}


def _guess_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed or "application/octet-stream"


def _rfc2822(moment: datetime) -> str:
    # Twilio's format: "Thu, 24 Aug 2023 05:01:45 +0000" (UTC, whole seconds).
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def _key_data(key: ConversationKey, *, opted_out: bool) -> dict[str, Any]:
    return {"channel": key.channel.value, "user": key.user, "bot": key.bot, "opted_out": opted_out}

"""The dev phone's server side: what the page can do and the live feed it reads.

:class:`DevPhone` wraps a :class:`DevSimulator` for the browser page:

- **send**: a phone texts the bot (text, a quick-reply press, a location, a
  sample image) through :func:`~devtools.simulator.inbound.send_inbound`, exactly
  as Twilio would deliver it;
- **feed**: every simulator event (messages, status changes, callbacks,
  opt-outs) plus the sends Twilio *refused* (``api.rejected``: a 21610 to an
  opted-out user leaves no message behind, yet the developer wants to see it);
- **snapshot**: one phone's thread with what the feed said about it, for the
  page's first paint and after a reconnect;
- **failures**: "make messages to this number fail with 30003".

Development only: nothing here is imported by ``bot serve``.

Example::

    sim = DevSimulator.from_settings(settings, webhook_url="http://127.0.0.1:8000/twilio/messages")
    phone = DevPhone(sim, bot="+15005550006", base_url="http://127.0.0.1:8000")
    phone.start()                                   # inside the server's event loop
    await phone.send(Channel.SMS, "+14155550100", body="hi")
    with phone.subscribe() as feed:
        event = await feed.get()                    # {"kind": "message.created", ...}
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import phonenumbers

from bot.messages import Channel, Choice, Location, Media
from devtools.simulator.errors import ERROR_MESSAGES, TwilioApiError
from devtools.simulator.events import EventKind, EventStream, SimulatorEvent, Subscription
from devtools.simulator.failures import FailureRule
from devtools.simulator.inbound import InboundResult, send_inbound
from devtools.simulator.message import SimMessage
from devtools.simulator.request import CreateMessageRequest
from devtools.simulator.state import Simulator

log = logging.getLogger(__name__)

# Fictional numbers (555-01xx in North America, Ofcom's drama range in the UK).
PRESET_USERS: Final = ("+14155550100", "+14155550101", "+447700900123")

SAMPLE_IMAGES: Final = {"tooth": "samples/tooth.png", "sunset": "samples/sunset.png"}

PRESET_LOCATIONS: Final = {
    "clinic": Location(39.7817, -89.6501, address="500 Market St, Springfield", label="Bright Smile Dental"),
    "harrow": Location(51.5287, -0.3818, address="Harrow, London", label="The Harrow Club"),
}

# Delivery-time failures a carrier reports (``undelivered`` after ``sent``).
FAILURE_CODES: Final = (30003, 30005, 30006, 30007, 30008)

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_HISTORY: Final = 2000  # messages whose callback/webhook notes we keep


class PhoneError(ValueError):
    """A request the dev phone cannot carry out (bad number, wrong channel)."""


def check_number(number: str) -> str:
    """``number`` stripped, if it is a possible E.164 phone number.

    >>> check_number(" +14155550100 ")
    '+14155550100'
    """
    number = number.strip()
    if not _E164.match(number):
        raise PhoneError(f"{number!r} is not an E.164 number like +14155550100")
    try:
        possible = phonenumbers.is_possible_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        possible = False
    if not possible:
        raise PhoneError(f"{number} is not a possible phone number")
    return number


class DevSimulator(Simulator):
    """A :class:`Simulator` that also reports the create requests it refuses.

    Twilio answers a refused send (21610, 21211, 63016 ...) with a 4xx and
    keeps no message, so the dev phone hears about it only through
    ``rejection_listeners``.

    Example::

        sim = DevSimulator(account_sid=sid, auth_token=token)
        sim.rejection_listeners.append(lambda request, error: print(error.code))
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rejection_listeners: list[Callable[[CreateMessageRequest, TwilioApiError], None]] = []

    async def create_message(self, request: CreateMessageRequest) -> SimMessage:
        """As :meth:`Simulator.create_message`; listeners hear about refusals."""
        try:
            return await super().create_message(request)
        except TwilioApiError as exc:
            for listener in self.rejection_listeners:
                listener(request, exc)
            raise


# One page's live feed of JSON-ready events: the simulator's bounded stream.
Feed = EventStream[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Rejection:
    """A send Twilio refused, as the phone shows it."""

    channel: str
    user: str
    bot: str | None
    body: str
    content_sid: str | None
    code: int
    error: str
    at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "user": self.user,
            "bot": self.bot,
            "body": self.body,
            "content_sid": self.content_sid,
            "code": self.code,
            "error": self.error,
            "at": self.at,
        }


class DevPhone:
    """The dev phone's state and actions over one :class:`DevSimulator`.

    ``bot`` is the number the phones text; ``base_url`` is where this server
    is reachable (sample images are served from it, so the bot can fetch them).
    ``delivery_state(sid)``, when given, reads what the bot recorded from the
    status callbacks it received; the feed adds it to ``callback.sent`` events.
    ``staff_number`` is where the bot texts hand-off notices (the page offers its phone).
    Call :meth:`start` inside the event loop that serves the page and
    :meth:`aclose` when it stops.

    Example::

        phone = DevPhone(sim, bot="+15005550006", base_url="http://127.0.0.1:8000")
        phone.set_failure(Channel.SMS, "+14155550100", 30003)
        phone.snapshot(Channel.SMS, "+14155550100")["failure"]["error_code"]   # 30003
    """

    def __init__(
        self,
        sim: DevSimulator,
        *,
        bot: str,
        base_url: str,
        delivery_state: Callable[[str], Awaitable[str | None]] | None = None,
        staff_number: str | None = None,
    ) -> None:
        self.sim = sim
        # Where hand-off notices go by SMS (STAFF_NUMBER, else the business's phone).
        self.staff_number = staff_number
        # The bot's own record of a message's status (its DeliveryTracker),
        # shown beside each status callback.
        self.delivery_state = delivery_state
        self.bot = check_number(bot)
        self.base_url = base_url.rstrip("/")
        self._feeds: set[Feed] = set()
        self._failures: dict[tuple[Channel, str], FailureRule] = {}
        self._callbacks: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._webhooks: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._rejections: deque[_Rejection] = deque(maxlen=200)
        self._pump: asyncio.Task[None] | None = None
        sim.rejection_listeners.append(self._rejected)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start relaying simulator events to pages (needs a running loop)."""
        if self._pump is None:
            subscription = self.sim.subscribe()
            self._pump = asyncio.get_running_loop().create_task(self._relay(subscription))

    async def aclose(self) -> None:
        """Stop relaying and end every page's feed."""
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
        for feed in list(self._feeds):
            feed.close()

    def subscribe(self) -> Feed:
        """A new live feed for one page; close it (or use ``with``) when done."""
        feed: Feed = EventStream(1000, self._feeds.discard)
        self._feeds.add(feed)
        return feed

    async def _relay(self, subscription: Subscription) -> None:
        with subscription:
            async for event in subscription:
                payload = event.to_dict()
                if event.kind is EventKind.CALLBACK_SENT and event.message is not None:
                    payload["data"]["recorded"] = await self._recorded(event.message.sid)
                self._note(event, payload["data"])
                self._publish(payload)

    async def _recorded(self, sid: str) -> str | None:
        if self.delivery_state is None:
            return None
        try:
            return await self.delivery_state(sid)
        except Exception:  # the view must not stop because the bot's store hiccupped
            log.warning("could not read the bot's delivery record", exc_info=True)
            return None

    def _publish(self, event: dict[str, Any]) -> None:
        for feed in list(self._feeds):
            feed.put(event)

    def _note(self, event: SimulatorEvent, data: dict[str, Any]) -> None:
        """Keep what a page needs to redraw after a reload: callbacks, webhook results."""
        if event.message is None:
            return
        sid = event.message.sid
        if event.kind is EventKind.CALLBACK_SENT:
            self._callbacks.setdefault(sid, []).append(data)
            _trim(self._callbacks)
        elif event.kind is EventKind.INBOUND_SENT:
            self._webhooks[sid] = data
            _trim(self._webhooks)

    def _rejected(self, request: CreateMessageRequest, error: TwilioApiError) -> None:
        if not request.to:
            return
        channel, user = Channel.from_address(request.to)
        rejection = _Rejection(
            channel=channel.value,
            user=user,
            bot=Channel.from_address(request.from_)[1] if request.from_ else None,
            body=request.body or "",
            content_sid=request.content_sid,
            code=error.code,
            error=error.message,
            at=time.time(),
        )
        self._rejections.append(rejection)
        self._publish({"kind": "api.rejected", "message": None, "data": rejection.to_dict()})

    # -- actions ---------------------------------------------------------------

    async def send(
        self,
        channel: Channel,
        user: str,
        *,
        body: str = "",
        button: Choice | None = None,
        replied_to: str | None = None,
        location: Location | None = None,
        image: str | None = None,
    ) -> InboundResult:
        """Text the bot from ``user`` as Twilio would deliver it.

        ``image`` names one of :data:`SAMPLE_IMAGES`, served by this server.
        Raises :class:`PhoneError` for a bad number, an unknown image, or a
        location or button press on SMS.
        """
        user = check_number(user)
        if user == self.bot:
            raise PhoneError("that is the bot's own number; pick another sender")
        if channel is Channel.SMS and (location is not None or button is not None):
            raise PhoneError("locations and button presses exist on WhatsApp only")
        media: tuple[Media, ...] = ()
        if image is not None:
            if image not in SAMPLE_IMAGES:
                raise PhoneError(f"unknown sample image {image!r}; pick one of {sorted(SAMPLE_IMAGES)}")
            media = (Media(self.sample_url(image), "image/png"),)
        if not (body.strip() or button or location or media):
            raise PhoneError("nothing to send")
        return await send_inbound(
            self.sim,
            user=user,
            bot=self.bot,
            channel=channel,
            body=body,
            media=media,
            location=location,
            button=button,
            replied_to=replied_to,
        )

    def sample_url(self, name: str) -> str:
        """The absolute URL of a sample image (the bot may fetch it)."""
        return f"{self.base_url}/dev/static/{SAMPLE_IMAGES[name]}"

    def set_failure(
        self, channel: Channel, user: str, error_code: int, *, status: str = "undelivered"
    ) -> FailureRule:
        """Make every later message to ``user`` on ``channel`` fail with ``error_code``."""
        user = check_number(user)
        if status not in {"failed", "undelivered"}:
            raise PhoneError("status must be 'failed' or 'undelivered'")
        rule = FailureRule(
            error_code=error_code,
            status="failed" if status == "failed" else "undelivered",
            to=user,
            channel=channel,
        )
        self._failures[(channel, user)] = rule
        self._sync_failures()
        return rule

    def clear_failure(self, channel: Channel, user: str) -> None:
        """Let messages to ``user`` on ``channel`` be delivered again."""
        self._failures.pop((channel, user.strip()), None)
        self._sync_failures()

    def _sync_failures(self) -> None:
        # The simulator has no per-rule removal; the phone owns the rules it shows.
        self.sim.clear_failures()
        for rule in self._failures.values():
            self.sim.inject_failure(rule)

    # -- views -------------------------------------------------------------------

    def snapshot(self, channel: Channel, user: str) -> dict[str, Any]:
        """One phone's thread and everything the page shows beside it."""
        messages = self.sim.conversation(channel, user=user)
        rule = self._failures.get((channel, user))
        return {
            "channel": channel.value,
            "user": user,
            "bot": self.bot,
            "opted_out": self.sim.is_opted_out(channel, user=user, bot=self.bot),
            "failure": _rule_dict(rule),
            "messages": [m.to_dict() for m in messages],
            "callbacks": {m.sid: self._callbacks[m.sid] for m in messages if m.sid in self._callbacks},
            "webhooks": {m.sid: self._webhooks[m.sid] for m in messages if m.sid in self._webhooks},
            "rejections": [
                r.to_dict() for r in self._rejections if r.channel == channel.value and r.user == user
            ],
        }

    def config(self) -> dict[str, Any]:
        """What the page needs to draw its controls."""
        return {
            "bot": self.bot,
            "staff_number": self.staff_number,
            "base_url": self.base_url,
            "presets": list(PRESET_USERS),
            "channels": [c.value for c in Channel],
            "images": [{"name": name, "url": self.sample_url(name)} for name in SAMPLE_IMAGES],
            "locations": [
                {
                    "name": name,
                    "label": loc.label,
                    "address": loc.address,
                    "latitude": loc.latitude,
                    "longitude": loc.longitude,
                }
                for name, loc in PRESET_LOCATIONS.items()
            ],
            "failure_codes": [
                {"code": code, "label": ERROR_MESSAGES.get(code, f"Error {code}")} for code in FAILURE_CODES
            ],
            "templates": {sid: t.name for sid, t in self.sim.templates.items()},
            "error_messages": {str(code): text for code, text in ERROR_MESSAGES.items()},
        }


def _rule_dict(rule: FailureRule | None) -> dict[str, Any] | None:
    if rule is None:
        return None
    return {"error_code": rule.error_code, "status": rule.status, "rate": rule.rate}


def _trim(notes: OrderedDict[str, Any], limit: int = _HISTORY) -> None:
    while len(notes) > limit:
        notes.popitem(last=False)


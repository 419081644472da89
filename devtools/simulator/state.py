"""The simulated Twilio account: its state, Twilio's rules applied, each message's lifecycle.

One :class:`Simulator` holds everything Twilio would know about a developer's
account: every message by SID, who opted out of which sender, when each
WhatsApp user last wrote (the 24-hour window), the content templates it can
render, the failures to inject, and the live subscribers (the dev phone).
Its entry points apply Twilio's rules to a "create message" request
(:meth:`Simulator.create_message`, the rules in :mod:`~devtools.simulator.create`)
and play each message's status lifecycle with signed status callbacks
(:mod:`~devtools.simulator.lifecycle`).

The parts it works with are modules of their own: the message
(:mod:`~devtools.simulator.message`), Twilio's rules and error catalog
(:mod:`~devtools.simulator.rules`, :mod:`~devtools.simulator.errors`), content
templates, injected failures, the config, the events and the request
(:mod:`~devtools.simulator.templates`, :mod:`~devtools.simulator.failures`,
:mod:`~devtools.simulator.config`, :mod:`~devtools.simulator.events`,
:mod:`~devtools.simulator.request`); import them from their modules or from
:mod:`devtools.simulator`.

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
import logging
import random
import secrets
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
from twilio.request_validator import RequestValidator

from bot.clock import Clock, SystemClock
from bot.messages import Channel, Choice, Location, Media
from bot.sms.segments import count_segments
from bot.storage.base import ConversationKey
from devtools.simulator.account import SimAccount
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.create import create_message
from devtools.simulator.errors import ERROR_MESSAGES
from devtools.simulator.events import EventKind, EventStream, SimulatorEvent, Subscription
from devtools.simulator.failures import FailureRule, Outcome
from devtools.simulator.lifecycle import start_lifecycle, status_callback_params
from devtools.simulator.message import MessageOrigin, SimMessage
from devtools.simulator.request import CreateMessageRequest
from devtools.simulator.rules import (
    ACCOUNT_SID,
    SERVICE_SID,
    USER_AGENT,
    WHATSAPP_WINDOW,
)
from devtools.simulator.templates import ContentTemplate

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)


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
        if not ACCOUNT_SID.match(account_sid):
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
        if not SERVICE_SID.match(service_sid):
            raise ValueError("MessagingServiceSid must be MG + 32 hex digits")
        self._services[service_sid] = tuple(Channel.from_address(s)[1] for s in senders)

    def sender_pool(self, service_sid: str) -> tuple[str, ...]:
        """The senders of a Messaging Service (bare E.164 numbers); empty when unknown."""
        return self._services.get(service_sid, ())

    @property
    def failures(self) -> tuple[FailureRule, ...]:
        """The failure rules, in the order they are checked."""
        return tuple(self._failures)

    def random(self) -> float:
        """The next number in [0, 1) from the seeded RNG (injected failure rates)."""
        return self._rng.random()

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

    def bots_written_to(self, channel: Channel, user: str) -> list[str]:
        """The bot numbers ``user`` wrote to on ``channel``, the most recent first (Twilio's sticky sender)."""
        return [
            key.bot
            for key, _ in sorted(self._last_inbound.items(), key=lambda kv: kv[1], reverse=True)
            if key.channel is channel and key.user == user
        ]

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
        list_button: str | None = None,
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
                list_button=list_button,
            )
        )


    async def create_message(self, request: CreateMessageRequest) -> SimMessage:
        """Apply Twilio's rules to a create request; start the status lifecycle (:mod:`~devtools.simulator.create`).

        Raises :class:`TwilioApiError` with Twilio's code where Twilio answers
        4xx. Must run inside the event loop that will play the lifecycle.
        """
        return await create_message(self, request)

    # -- lifecycle and callbacks -------------------------------------------

    def start_lifecycle(self, message: SimMessage, outcome: Outcome | None = None) -> None:
        """Play ``queued → sent → delivered (→ read)`` or an injected failure (:mod:`~devtools.simulator.lifecycle`)."""
        start_lifecycle(self, message, outcome)

    def status_callback_params(self, message: SimMessage) -> dict[str, str]:
        """The form Twilio POSTs to a StatusCallback for ``message``'s status now."""
        return status_callback_params(message, self.clock)

    def set_status(self, sid: str, status: str, error_code: int | None) -> SimMessage | None:
        """Move a stored message to ``status`` and announce it; None when it was deleted meanwhile."""
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






def _key_data(key: ConversationKey, *, opted_out: bool) -> dict[str, Any]:
    return {"channel": key.channel.value, "user": key.user, "bot": key.bot, "opted_out": opted_out}

"""The simulated Twilio account: its state, Twilio's rules applied, each message's lifecycle.

One :class:`Simulator` holds everything Twilio would know about a developer's
account: every message by SID, who opted out of which sender, when each
WhatsApp user last wrote (the 24-hour window), the content templates it can
render, the failures to inject, and the live subscribers (the dev phone).
It also applies Twilio's rules to a "create message" request
(:meth:`Simulator.create_message`) and plays each message's status lifecycle,
POSTing signed status callbacks like Twilio.

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
import hashlib
import logging
import mimetypes
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
from bot.sms.segments import MAX_BODY_CHARS, body_length, count_segments
from bot.storage.base import ConversationKey
from devtools.simulator.account import SimAccount
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.errors import ERROR_MESSAGES, TwilioApiError
from devtools.simulator.events import EventKind, EventStream, SimulatorEvent, Subscription
from devtools.simulator.failures import FailureRule, Outcome
from devtools.simulator.message import MessageOrigin, SimMessage
from devtools.simulator.request import CreateMessageRequest
from devtools.simulator.rules import (
    ACCOUNT_SID,
    API_VERSION,
    CONTENT_LIMIT,
    MAGIC_FROM,
    MAGIC_TO,
    SERVICE_SID,
    USER_AGENT,
    WHATSAPP_WINDOW,
    is_e164,
    parse_variables,
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
            list_button=template.list_button if template and channel is Channel.WHATSAPP else None,
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
        if not is_e164(number):
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
        if not is_e164(sender):
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



def _guess_type(url: str) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(url).path)
    return guessed or "application/octet-stream"



def _key_data(key: ConversationKey, *, opted_out: bool) -> dict[str, Any]:
    return {"channel": key.channel.value, "user": key.user, "bot": key.bot, "opted_out": opted_out}

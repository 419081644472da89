"""Replaying transcripts through the real HTTP path, in-process or against a server.

In-process (the default), every conversation gets its own app from
``create_app(settings, store=, clock=, chat_model=, twilio=)``: a fresh
:class:`~bot.storage.MemoryStore` (or a :class:`~bot.storage.RedisStore` and
a bot number of its own when ``REDIS_URL`` is set), a
:class:`~bot.clock.FrozenClock` at the transcript's ``now:``, a
:class:`~devtools.replay.scripted_model.ScriptedChatModel` when it has ``llm:``,
and the official ``twilio`` client talking to an in-process local Twilio API
(:mod:`devtools.simulator`). Each step is then:

- ``user`` / ``button``: a form signed like Twilio's, POSTed to
  ``/twilio/messages`` through the ASGI app (:class:`~devtools.webhook_client.WebhookClient`);
- ``duplicate``: the previous inbound request again, byte for byte;
- ``advance``: the frozen clock moves;
- ``status``: a signed POST to ``/twilio/status`` for the bot's last outbound message;
- ``run``: ``await runtime.jobs[JOB]()``.

What the bot sent for the step is the TwiML answer plus every message created
at the local Twilio API during the step (after the app's outbox and late turns
have settled), checked with :func:`devtools.replay.expect.check`.

With ``url=``, steps are POSTed to a running server instead; only TwiML
answers are seen, intents cannot be read, and steps that need the frozen
clock, the scheduled jobs or the scripted model skip the rest of the
conversation (:meth:`~devtools.replay.transcript.Transcript.needs_local`).

Conversations are independent and run concurrently (8 at a time by default).

Example::

    runner = ReplayRunner(replay_settings())
    report = await runner.run(load_transcripts([Path("tests/transcripts")]))
    for result in report.results:
        print(result.line())
    print(report.summary())      # '12 passed, 0 failed'
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import re
import secrets
import time
import traceback
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, cast

import httpx
import phonenumbers
from twilio.http import AsyncHttpClient
from twilio.http.response import Response as TwilioResponse
from twilio.rest import Client

from bot.clock import Clock, FrozenClock
from bot.compliance import keyword_type
from bot.compliance.ledger import MemoryConsentLedger
from bot.engine import TurnHandler
from bot.errors import BotError
from bot.handoff import StaffNotifier, outbox_staff_notifier
from bot.messages import Channel, Choice, InboundMessage, OptOutType, TurnResult
from bot.outbound.ledger import SendLedger
from bot.outbound.outbox import InlineOutbox
from bot.settings import Settings, load_settings
from bot.sms.segments import count_segments
from bot.storage import AppointmentStore, ConversationStore, JobStore, LedgerStore, MemoryStore, RedisStore, Stores
from bot.storage.base import ConversationKey, ConversationState
from devtools.replay.expect import SentMessage, StepOutcome, Via, check, format_failure
from devtools.replay.scripted_model import ModelCall, ModelScript, ScriptedChatModel
from devtools.replay.transcript import (
    AdvanceStep,
    ButtonStep,
    CallStep,
    DigitsStep,
    DuplicateStep,
    Expect,
    HangupStep,
    RunStep,
    StatusStep,
    Step,
    TextStep,
    Transcript,
    UserStep,
    _quote,
)
from devtools.simulator import (
    MessageOrigin,
    SimMessage,
    Simulator,
    SimulatorConfig,
    create_simulator_app,
)
from devtools.simulator.calls import CallPlayer, CallTurn
from devtools.simulator.content import register_content_templates
from devtools.simulator.inbound import apply_keyword, parse_twiml, twilio_keyword
from devtools.simulator.state import DEFAULT_KEYWORD_REPLIES
from devtools.webhook_client import WebhookClient, inbound_form, new_sid

__all__ = [
    "BOT_NUMBER",
    "DEFAULT_NOW",
    "PUBLIC_URL",
    "ConversationResult",
    "HandlerFactory",
    "InProcessConversation",
    "RemoteConversation",
    "ReplayError",
    "ReplayReport",
    "ReplayRunner",
    "SimulatorHttpClient",
    "StepObservation",
    "StepResult",
    "replay_settings",
]

log = logging.getLogger("devtools.replay")

#: The bot's number in replayed conversations (Twilio's "valid sender" test number).
BOT_NUMBER = "+15005550006"
#: Where the frozen clock starts when a transcript has no ``now:`` (a Monday, 9am in New York).
DEFAULT_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
#: The URL the in-process app believes Twilio calls; webhooks are signed over it.
PUBLIC_URL = "https://replay.bot.test"
#: The Twilio REST API base the in-process app's client uses (served in-process).
TWILIO_API_URL = "https://api.twilio.replay.test"
DEFAULT_CONCURRENCY = 8

_DEV_ACCOUNT_SID = "AC" + "d" * 32
_DEV_AUTH_TOKEN = "dev-auth-token"  # noqa: S105 - the public development default of bot chat/dev
_MESSAGES_PATH = "/twilio/messages"
_STATUS_PATH = "/twilio/status"

StepStatus: TypeAlias = Literal["passed", "failed", "skipped", "not run"]
Status: TypeAlias = Literal["passed", "failed", "skipped"]


class ReplayError(BotError):
    """Replay itself could not do what a step asks (not a bot failure)."""


class HandlerFactory(Protocol):
    """Builds the turn handler, called like :func:`bot.brain.build_handler`.

    Example::

        def answer_twice(settings, **parts):
            return MyHandler()
        ReplayRunner(settings, handler_factory=answer_twice)
    """

    def __call__(
        self, settings: Settings, *, templates: Any, clock: Clock, store: ConversationStore, chat_model: Any
    ) -> TurnHandler: ...


def replay_settings(**overrides: Any) -> Settings:
    """Settings for replay: the environment and ``.env``, with development credentials when unset.

    Example::

        settings = replay_settings(redis_url=None)   # force the memory store
    """
    values: dict[str, Any] = {}
    if not os.environ.get("ENVIRONMENT"):
        # A dev tool: production's rules (REDIS_URL required) only when asked for.
        values["environment"] = "development"
    if not os.environ.get("TWILIO_ACCOUNT_SID"):
        values["twilio_account_sid"] = _DEV_ACCOUNT_SID
    if not os.environ.get("TWILIO_AUTH_TOKEN"):
        values["twilio_auth_token"] = _DEV_AUTH_TOKEN
    values.update(overrides)
    return load_settings(**values)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepObservation:
    """What one step did, before its expectations are checked.

    ``problems`` are failures found without any expectation (a webhook that
    did not answer 200, a retried delivery that ran the turn again, a model
    script that ran out, an unknown job). ``skip`` is set when the step could
    not run at all (e.g. the app has no ``/twilio/status`` yet).

    Example::

        seen = await conversation.step(UserStep("hi"))
        seen.outcome.sent, seen.outcome.intent, seen.problems, seen.webhook_seconds
    """

    outcome: StepOutcome = field(default_factory=StepOutcome)
    problems: tuple[str, ...] = ()
    skip: str | None = None
    http_status: int | None = None
    webhook_seconds: float | None = None
    turn_ran: bool = False
    model_calls: tuple[ModelCall, ...] = ()
    logs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a replayed conversation; ``index`` is 0-based.

    ``webhook_seconds`` is the time the HTTP request to the app took (None for
    steps without one); ``seconds`` the whole step, settling included.

    Example::

        [step.status for step in result.steps]   # ['passed', 'failed', 'not run']
        result.steps[0].to_dict()["actual"]["intent"]
    """

    index: int
    step: Step
    status: StepStatus
    sent: tuple[SentMessage, ...] = ()
    intent: str | None = None
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    http_status: int | None = None
    entities: Mapping[str, Any] = field(default_factory=dict)
    webhook_seconds: float | None = None
    seconds: float = 0.0
    model_calls: tuple[ModelCall, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the step, what was expected, what happened."""
        return {
            "number": self.index + 1,
            "line": self.step.line,
            "kind": self.step.kind,
            "step": self.step.describe(),
            "status": self.status,
            "expected": _expect_dict(self.step.expect),
            "actual": {
                "sent": [_sent_dict(m) for m in self.sent],
                "intent": self.intent,
                "entities": dict(self.entities),
                "http_status": self.http_status,
            },
            "failures": list(self.failures),
            "notes": list(self.notes),
            "model_calls": [call.to_dict() for call in self.model_calls],
            "timings": {
                "webhook_ms": None if self.webhook_seconds is None else round(self.webhook_seconds * 1000, 3),
                "total_ms": round(self.seconds * 1000, 3),
            },
        }


@dataclass(frozen=True, slots=True)
class ConversationResult:
    """The outcome of one conversation: passed, failed (with the text to read) or skipped (with why).

    Example::

        result.line()        # 'PASS greeting (tests/transcripts/spine/greeting.yaml:1)'
        result.failure       # the formatted failure, or None
    """

    transcript: Transcript
    status: Status
    steps: tuple[StepResult, ...] = ()
    failure: str | None = None
    reason: str | None = None
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """The conversation's name."""
        return self.transcript.name

    @property
    def steps_run(self) -> int:
        """Steps that ran (passed or failed)."""
        return sum(1 for s in self.steps if s.status in ("passed", "failed"))

    def line(self) -> str:
        """The one-line summary ``bot replay`` prints (a failure's text follows, indented)."""
        if self.status == "skipped":
            return f"SKIP {self.name}: {self.reason}"
        label = "PASS" if self.status == "passed" else "FAIL"
        line = f"{label} {self.name} ({self.transcript.origin})"
        unchecked = sum(1 for s in self.steps if any(n.startswith("intent not checked") for n in s.notes))
        if unchecked:
            line += f" [intent not checked on {unchecked} step{'s' if unchecked != 1 else ''}: needs in-process replay]"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``bot replay --json``."""
        webhook = [s.webhook_seconds for s in self.steps if s.webhook_seconds is not None]
        return {
            "name": self.name,
            "file": str(self.transcript.path),
            "line": self.transcript.line,
            "channel": self.transcript.channel.value,
            "status": self.status,
            "reason": self.reason,
            "failure": self.failure,
            "failures": [f for s in self.steps for f in s.failures],
            "steps": [s.to_dict() for s in self.steps],
            "timings": {
                "total_ms": round(self.seconds * 1000, 3),
                "webhook_ms": round(sum(webhook) * 1000, 3),
                "steps_run": self.steps_run,
            },
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Every conversation's result, in the order given, and the wall time.

    Example::

        report.summary()   # '10 passed, 1 failed, 2 skipped'
        report.ok          # False
    """

    results: tuple[ConversationResult, ...]
    seconds: float = 0.0
    mode: str = "in-process"

    @property
    def passed(self) -> int:
        """How many conversations passed."""
        return sum(1 for r in self.results if r.status == "passed")

    @property
    def failed(self) -> int:
        """How many conversations failed."""
        return sum(1 for r in self.results if r.status == "failed")

    @property
    def skipped(self) -> int:
        """How many conversations were skipped (wholly or from some step on)."""
        return sum(1 for r in self.results if r.status == "skipped")

    @property
    def ok(self) -> bool:
        """No conversation failed."""
        return self.failed == 0

    @property
    def steps_run(self) -> int:
        """Steps that ran, over all conversations."""
        return sum(r.steps_run for r in self.results)

    def summary(self) -> str:
        """The closing line: ``N passed, N failed`` (``, N skipped`` when any)."""
        line = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            line += f", {self.skipped} skipped"
        return line

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable report ``--json`` writes."""
        return {
            "version": 1,
            "mode": self.mode,
            "summary": {
                "passed": self.passed,
                "failed": self.failed,
                "skipped": self.skipped,
                "steps_run": self.steps_run,
                "seconds": round(self.seconds, 4),
            },
            "conversations": [r.to_dict() for r in self.results],
        }


def _expect_dict(expect: Expect | None) -> dict[str, Any] | None:
    if expect is None:
        return None
    out: dict[str, Any] = {}
    if expect.reply is not None:
        out["reply"] = expect.reply
    if expect.reply_contains:
        out["reply_contains"] = list(expect.reply_contains)
    if expect.reply_matches is not None:
        out["reply_matches"] = expect.reply_matches.pattern
    for key in ("no_reply", "replies", "intent", "template", "media", "segments"):
        value = getattr(expect, key)
        if value is not None:
            out[key] = value
    if expect.slots:
        out["slots"] = dict(expect.slots)
    return out


def _sent_dict(message: SentMessage) -> dict[str, Any]:
    return {
        "to": message.to,
        "body": message.body,
        "media": list(message.media),
        "template": message.template,
        "segments": message.segments,
        "via": message.via,
    }


# --------------------------------------------------------------------------
# The official twilio client, talking to the in-process local Twilio API
# --------------------------------------------------------------------------


class SimulatorHttpClient(AsyncHttpClient):  # type: ignore[misc]
    """An async HTTP client for the official ``twilio`` SDK that calls an ASGI app in-process.

    Whatever host the SDK addresses, the request goes to ``app`` (the local
    Twilio API of :mod:`devtools.simulator`), so the SDK's own request building,
    authentication and response parsing all run for real.

    Example::

        sim = Simulator(account_sid=sid, auth_token=token)
        http = SimulatorHttpClient(create_simulator_app(sim, close_on_shutdown=False))
        client = Client(sid, token, http_client=http)
        await client.messages.create_async(to="+14155550123", from_="+15005550006", body="Hi")
        await http.close()
    """

    def __init__(self, app: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        super().__init__(log, True, None)
        if (app is None) == (factory is None):
            raise ValueError("give either app or factory")
        # A factory defers building the app to the first request: most
        # replayed conversations never call the REST API.
        self._app = app
        self._factory = factory
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The in-process HTTP client (built on first use)."""
        if self._client is None:
            app = self._app if self._factory is None else self._factory()
            self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=TWILIO_API_URL)
        return self._client

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the SDK's signature
        allow_redirects: bool = False,
    ) -> TwilioResponse:
        """Send one SDK request to the app; returns the SDK's own response type."""
        response = await self.client.request(
            method.upper(),
            url,
            params=cast(Any, params),
            data=cast(Any, data),
            headers=headers,
            auth=auth,
            follow_redirects=allow_redirects,
        )
        return TwilioResponse(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        """Close the in-process HTTP client."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _absorb_callbacks(request: httpx.Request) -> httpx.Response:
    # The simulator plays every message's status lifecycle; in replay the bot
    # hears about statuses only through explicit `status:` steps.
    return httpx.Response(204)


# --------------------------------------------------------------------------
# Sharing one bot between conversations
# --------------------------------------------------------------------------
#
# Building the Brain trains the intent classifier, which takes far longer
# than a conversation. The runner builds it once, with a clock, a store and a
# model that resolve to the *current conversation's* through a context
# variable; each conversation still gets its own app, store, clock, Twilio
# API and jobs. Tasks copy context variables, so a turn the app finishes in
# the background still sees its own conversation.


@dataclass(slots=True)
class _Scope:
    clock: Clock
    store: ConversationStore
    script: ModelScript | None
    logs: list[logging.LogRecord] = field(default_factory=list)
    # The conversation's own app tells staff through its own outbox.
    notify_staff: StaffNotifier | None = None


_SCOPE: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar("bot_replay_scope", default=None)


class _ScopedClock:
    """The current conversation's clock (the system clock outside any)."""

    def now(self) -> datetime:
        scope = _SCOPE.get()
        return scope.clock.now() if scope is not None else datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()


class _ScopedStore:
    """The current conversation's store."""

    def __getattr__(self, name: str) -> Any:
        scope = _SCOPE.get()
        if scope is None:
            raise ReplayError(f"the shared bot used its store ({name}) outside a replayed conversation")
        return getattr(scope.store, name)


class _ScopedSibling:
    """One of the current conversation's other stores (``appointments``, ``ledger``, ``jobs``)."""

    def __init__(self, part: str) -> None:
        self._part = part

    def __getattr__(self, name: str) -> Any:
        scope = _SCOPE.get()
        if scope is None:
            raise ReplayError(f"the shared bot used its {self._part} store outside a replayed conversation")
        return getattr(getattr(Stores.beside(scope.store), self._part), name)


def _scoped_store() -> ConversationStore:
    """A store that is the current conversation's, with siblings that are too."""
    store = cast(ConversationStore, _ScopedStore())
    Stores.register(store, Stores(
        store, cast(AppointmentStore, _ScopedSibling("appointments")),
        cast(LedgerStore, _ScopedSibling("ledger")), cast(JobStore, _ScopedSibling("jobs"))))
    return store


class _ScopedChatModel(ScriptedChatModel):
    """The current conversation's model script."""

    def active_script(self) -> ModelScript:
        scope = _SCOPE.get()
        if scope is None or scope.script is None:
            raise ReplayError("the shared bot called its model outside a conversation with llm:")
        return scope.script


class _ScopedStaffNotifier:
    """Tells staff through the current conversation's outbox (the shared bot has none of its own)."""

    async def __call__(self, key: ConversationKey, notice: str, message_sid: str) -> None:
        scope = _SCOPE.get()
        if scope is None or scope.notify_staff is None:
            raise ReplayError("the shared bot notified staff outside a replayed conversation")
        await scope.notify_staff(key, notice, message_sid)


class _ScopeLogs(logging.Handler):
    """Keeps the app's error logs with the conversation that produced them."""

    def emit(self, record: logging.LogRecord) -> None:
        scope = _SCOPE.get()
        if scope is not None and len(scope.logs) < 50:
            scope.logs.append(record)


# --------------------------------------------------------------------------
# One live conversation
# --------------------------------------------------------------------------


class _Conversation:
    """What both ways of replaying share: the texter, forms, observation."""

    def __init__(self, *, channel: Channel, user: str, bot: str, profile_name: str | None, account_sid: str) -> None:
        self.channel = channel
        self.user = user
        self.bot = bot
        self.profile_name = profile_name
        self.account_sid = account_sid
        self.webhooks: WebhookClient | None = None
        self._last_request: tuple[bytes, dict[str, str], str] | None = None
        self._last_answer: str | None = None
        self._last_turn_ran = False
        self._offered: dict[str, tuple[str, str | None]] = {}

    # -- forms ---------------------------------------------------------------

    def user_form(
        self, text: str, *, media: Sequence[str] = (), location: tuple[float, float] | None = None
    ) -> dict[str, str]:
        """The form Twilio posts for a message with Body ``text``."""
        sid = new_sid("MM" if media else "SM")
        pairs = [
            (f"https://api.twilio.com/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media/{new_sid('ME')}", ct)
            for ct in media
        ]
        form = inbound_form(
            self.channel, self.user, self.bot, text, message_sid=sid, account_sid=self.account_sid,
            media=pairs, location=location, profile_name=self.profile_name,
        )
        if location is not None and self.channel is not Channel.WHATSAPP:
            form["Latitude"], form["Longitude"] = str(location[0]), str(location[1])
        return form

    def button_form(self, payload: str) -> dict[str, str]:
        """The form of a quick-reply press; ButtonText from the buttons last offered, if known."""
        title, offered_by = self._offered.get(payload, (payload, None))
        form = inbound_form(
            self.channel, self.user, self.bot, title, account_sid=self.account_sid,
            button_payload=payload, button_text=title, replied_to=offered_by, profile_name=self.profile_name,
        )
        if self.channel is not Channel.WHATSAPP:
            # Spec: an SMS conversation's button step is delivered the same way.
            form.update(ButtonPayload=payload, ButtonText=title, Body=title)
            if offered_by:
                form["OriginalRepliedMessageSid"] = offered_by
        return form

    def remember_buttons(self, offers: Sequence[tuple[str, Sequence[Choice]]]) -> None:
        """Buttons the bot just offered (message SID, choices): the latest offer wins."""
        for sid, buttons in offers:
            if buttons:
                self._offered = {b.payload: (b.title, sid) for b in buttons}

    def sent(self, to: str, body: str, media: Sequence[str], *, via: Via, template: str | None = None,
             buttons: Sequence[str] = ()) -> SentMessage:
        """A :class:`SentMessage` with its SMS segments counted (MMS count as one)."""
        channel = Channel.from_address(to)[0]
        segments = None
        if channel is Channel.SMS:
            segments = 1 if media else count_segments(body).segments
        return SentMessage(to=to, body=body, media=tuple(media), template=template, segments=segments, via=via,
                           buttons=tuple(buttons))

    @property
    def offered_buttons(self) -> list[str]:
        """Payloads of the buttons last offered, in order (``bot chat``'s ``/button N``)."""
        return list(self._offered)

    async def step(self, step: Step) -> StepObservation:
        """Run one step and observe what the bot did."""
        if isinstance(step, UserStep):
            return await self.deliver(self.user_form(step.text, media=step.media, location=step.location))
        if isinstance(step, ButtonStep):
            return await self.deliver(self.button_form(step.payload))
        if isinstance(step, DuplicateStep):
            return await self.redeliver()
        return await self.local_step(step)

    async def deliver(self, form: dict[str, str]) -> StepObservation:
        """Sign and POST an inbound message form."""
        assert self.webhooks is not None
        body, headers = self.webhooks.signed(_MESSAGES_PATH, form)
        self._last_request = (body, headers, form["MessageSid"])
        return await self.post_inbound(body, headers, form)

    async def redeliver(self) -> StepObservation:
        """The previous inbound request again, byte for byte."""
        if self._last_request is None:
            raise ReplayError("duplicate: no earlier user or button step was delivered")
        body, headers, _ = self._last_request
        return await self.post_inbound(body, headers, None)

    async def post_inbound(self, body: bytes, headers: dict[str, str], form: dict[str, str] | None) -> StepObservation:
        raise NotImplementedError

    async def local_step(self, step: Step) -> StepObservation:
        raise ReplayError(f"{step.describe()} needs in-process replay")

    def duplicate_problems(self, answer: str, ran: bool, rest: int) -> list[str]:
        """Exactly-once: a retried delivery must be served the first answer and nothing else."""
        sid = self._last_request[2] if self._last_request else "the message"
        if not self._last_turn_ran:
            return []  # the first delivery did not commit (it crashed): a retry may run the turn
        problems = []
        if ran:
            problems.append(f"exactly-once broken: the retried delivery of {sid} ran the turn again")
        if answer != self._last_answer:
            problems.append(
                f"exactly-once broken: the retried delivery of {sid} was not answered with the first answer "
                f"byte for byte (first: {_quote(_short(self._last_answer or ''))}, retry: {_quote(_short(answer))})"
            )
        if rest:
            problems.append(
                f"exactly-once broken: the retried delivery of {sid} sent {rest} new message"
                f"{'s' if rest != 1 else ''} through the REST API"
            )
        return problems


@dataclass(frozen=True, slots=True)
class _Mark:
    """Where things stood when a step began: what happened since is the step's."""

    messages: int
    turns: int
    calls: int
    errors: int


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class InProcessConversation(_Conversation):
    """A conversation with an app running in this process: the full replay.

    Used by :class:`ReplayRunner` and by ``bot chat``; an async context
    manager that builds the app (and its local Twilio API) and runs its
    lifespan.

    Example::

        async with InProcessConversation(settings, channel=Channel.SMS, user="+14155550123",
                                         clock=FrozenClock(DEFAULT_NOW)) as conv:
            seen = await conv.step(UserStep("hi"))
            seen.outcome.sent[0].body, seen.outcome.intent
    """

    def __init__(
        self,
        settings: Settings,
        *,
        channel: Channel,
        user: str,
        bot: str = BOT_NUMBER,
        profile_name: str | None = None,
        clock: Clock | None = None,
        store: ConversationStore | None = None,
        chat_model: Any = None,
        script: ModelScript | None = None,
        handler: TurnHandler | None = None,
        cleanup_store: bool = False,
        dial_status: str = "completed",
    ) -> None:
        super().__init__(
            channel=channel, user=user, bot=bot, profile_name=profile_name, account_sid=settings.twilio_account_sid
        )
        # The store is always injected; without REDIS_URL the app also keeps
        # its outbox in-process, so REST sends and jobs finish within the step.
        self.settings = settings.model_copy(
            update={"public_base_url": PUBLIC_URL, "twilio_api_base_url": TWILIO_API_URL, "redis_url": None}
        )
        self.clock: Clock = clock or FrozenClock(DEFAULT_NOW)
        self.store: ConversationStore = store or MemoryStore()
        self.chat_model = chat_model
        self.script = script or getattr(chat_model, "script", None)
        self.handler = handler
        self.cleanup_store = cleanup_store
        self.key = ConversationKey(channel, bot, user)
        self._stack = AsyncExitStack()
        self._results: list[TurnResult] = []
        self.services: Any = None
        self._sim: Simulator | None = None
        # channel: voice -- the call in progress, and what the staff phone does when dialled.
        self.dial_status = dial_status
        self.call: CallPlayer | None = None

    async def __aenter__(self) -> InProcessConversation:
        from webhooks.app import create_app

        settings = self.settings
        token = settings.twilio_auth_token.get_secret_value()
        try:
            services: dict[str, list[str]] = {}
            service = settings.twilio_messaging_service_sid
            if service and re.fullmatch(r"MG[0-9a-fA-F]{32}", service):
                services[service] = [self.bot]
            callbacks = httpx.AsyncClient(transport=httpx.MockTransport(_absorb_callbacks))
            self._stack.push_async_callback(callbacks.aclose)
            self._sim = Simulator(
                account_sid=settings.twilio_account_sid,
                auth_token=token,
                clock=self.clock,
                http_client=callbacks,
                config=SimulatorConfig(
                    step_delay=0, twilio_keyword_replies=settings.sms_keyword_replies == "twilio"
                ),
                messaging_services=services,
            )
            self._stack.push_async_callback(self.sim.aclose)
            sim = self._sim
            twilio_http = SimulatorHttpClient(factory=lambda: create_simulator_app(sim, close_on_shutdown=False))
            self._stack.push_async_callback(twilio_http.close)
            twilio = Client(settings.twilio_account_sid, token, http_client=twilio_http)
            twilio.api.base_url = TWILIO_API_URL

            # A replay in a shared Redis must not write the real consent ledger.
            ledger = MemoryConsentLedger() if self.cleanup_store else None
            app = create_app(
                settings, store=self.store, clock=self.clock, handler=self.handler,
                chat_model=self.chat_model, twilio=twilio, consent_ledger=ledger,
            )
            await self._stack.enter_async_context(app.router.lifespan_context(app))
            self.services = app.state.services
            # The local API knows the ContentSids of the app's own registry.
            register_content_templates(self._sim, self.services.outbound.templates)
            scope = _SCOPE.get()
            if scope is not None and self.services.business is not None:
                scope.notify_staff = outbox_staff_notifier(settings, self.services.outbound.outbox,
                                                           self.services.business)
            # The intent of each step comes from the engine, not the HTTP answer.
            self.services.engine.observers.append(self._observe_turn)
            if self.cleanup_store:
                self._stack.push_async_callback(self._clean_store)
            http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://replay.internal")
            self._stack.push_async_callback(http.aclose)
            self.webhooks = WebhookClient(http, auth_token=token, public_base_url=PUBLIC_URL)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    @property
    def sim(self) -> Simulator:
        """The local Twilio API this conversation's app talks to."""
        if self._sim is None:
            raise ReplayError("the conversation is not open (use async with)")
        return self._sim

    async def _clean_store(self) -> None:
        # A shared Redis: leave nothing of this conversation behind.
        if isinstance(self.store, RedisStore):
            with contextlib.suppress(Exception):
                await self.store.client.delete(self.key.part("state"))
                await self.store.client.delete(self.key.opt_out_key)

    # -- steps ---------------------------------------------------------------

    async def step(self, step: Step) -> StepObservation:
        if self.channel is Channel.VOICE and not isinstance(step, AdvanceStep | RunStep | StatusStep):
            return await self._voice_step(step)
        return await super().step(step)

    async def _voice_step(self, step: Step) -> StepObservation:
        """One step of a call: the replies are the ``<Say>`` texts the caller heard."""
        assert self.webhooks is not None
        if isinstance(step, TextStep):
            # The caller texts from the same number: an SMS conversation of the same patient.
            self.channel = Channel.SMS
            try:
                return await self.deliver(self.user_form(step.text))
            finally:
                self.channel = Channel.VOICE
        mark = self._mark()
        started = time.perf_counter()
        turn: CallTurn
        if isinstance(step, CallStep):
            self.call = CallPlayer(
                self.sim, user=self.user, bot=self.bot, http=self.webhooks.http,
                voice_url=f"{self.webhooks.http.base_url}".rstrip("/") + "/twilio/voice",
                voice_public_url=f"{PUBLIC_URL}/twilio/voice", dial_status=self.dial_status,
            )
            turn = await self.call.start()
        elif self.call is None:
            raise ReplayError(f"{step.describe()}: no call in progress (call: true first)")
        elif isinstance(step, UserStep):
            turn = await (self.call.say(step.text, confidence=step.confidence if step.confidence is not None
                                        else 0.92) if step.text else self.call.silence())
        elif isinstance(step, DigitsStep):
            turn = await self.call.press(step.digits)
        elif isinstance(step, HangupStep):
            turn = await self.call.hang_up()
        elif isinstance(step, DuplicateStep):
            return await self._voice_retry(mark, started)
        else:
            raise ReplayError(f"{step.describe()} does not exist on a call")
        webhook = time.perf_counter() - started
        await self._settle()
        rest = await self._rest_since(mark)
        ran, intent = self._turn(mark)
        said = [SentMessage(to=self.user, body=line, via="twiml") for line in turn.said]
        return self._observe(mark, [*said, *rest], intent=intent, http_status=200, webhook=webhook, ran=ran)

    async def _voice_retry(self, mark: _Mark, started: float) -> StepObservation:
        """The caller's last request again: it must not run the turn twice, and gets the same answer."""
        assert self.call is not None
        said = await self.call.redeliver()
        webhook = time.perf_counter() - started
        await self._settle()
        rest = await self._rest_since(mark)
        ran, intent = self._turn(mark)
        problems = []
        if ran:
            problems.append("exactly-once broken: the retried call request ran the turn again")
        if rest:
            problems.append(f"exactly-once broken: the retried call request sent {len(rest)} new message(s)")
        sent = [SentMessage(to=self.user, body=line, via="twiml") for line in said]
        return self._observe(mark, [*sent, *rest], intent=intent, problems=problems, http_status=200,
                             webhook=webhook, ran=ran)

    async def post_inbound(self, body: bytes, headers: dict[str, str], form: dict[str, str] | None) -> StepObservation:
        assert self.webhooks is not None
        keyword_reply: list[SentMessage] = []
        if form is not None:
            keyword_reply = self._twilio_side(form)
        mark = self._mark()
        started = time.perf_counter()
        response = await self.webhooks.http.post(_MESSAGES_PATH, content=body, headers=headers)
        webhook = time.perf_counter() - started
        await self._settle()
        problems: list[str] = []
        twiml: list[SentMessage] = []
        if response.status_code != 200:
            problems.append(_http_problem(response, "/twilio/messages"))
        else:
            try:
                twiml = self._twiml_replies(response.text)
            except ValueError as exc:
                problems.append(f"the webhook's answer is not valid TwiML ({exc}): {_quote(_short(response.text))}")
        rest = await self._rest_since(mark)
        ran, intent = self._turn(mark)
        if form is None:
            problems.extend(self.duplicate_problems(response.text, ran, len(rest)))
        else:
            self._last_answer = response.text
            self._last_turn_ran = ran
        return self._observe(
            mark, [*keyword_reply, *twiml, *rest], intent=intent, problems=problems,
            http_status=response.status_code,
            webhook=webhook, ran=ran,
        )

    async def local_step(self, step: Step) -> StepObservation:
        if isinstance(step, AdvanceStep):
            if not isinstance(self.clock, FrozenClock):
                raise ReplayError("advance needs a frozen clock")
            self.clock.advance(step.delta)
            return StepObservation()
        if isinstance(step, RunStep):
            return await self._run_job(step.job)
        if isinstance(step, StatusStep):
            return await self._status(step)
        raise ReplayError(f"unknown step {step.describe()}")

    async def _run_job(self, name: str) -> StepObservation:
        jobs: Mapping[str, Callable[[], Awaitable[Any]]] = getattr(self.services, "jobs", None) or {}
        job = jobs.get(name)
        if job is None:
            known = ", ".join(sorted(jobs)) if jobs else "none (runtime.jobs is empty)"
            return StepObservation(problems=(f"unknown job {_quote(name)}; this app's scheduled jobs: {known}",))
        mark = self._mark()
        problems: list[str] = []
        try:
            await job()
        except Exception as exc:
            problems.append(f"job {_quote(name)} raised {type(exc).__name__}: {exc}")
        await self._settle()
        ran, intent = self._turn(mark)
        return self._observe(mark, await self._rest_since(mark), intent=intent, problems=problems, ran=ran)

    async def _status(self, step: StatusStep) -> StepObservation:
        assert self.webhooks is not None
        last = self._last_outbound()
        if last is None:
            return StepObservation(
                problems=("status: the bot has not sent any message yet, so there is none to report a status for",)
            )
        message = replace(last, status=step.status, error_code=step.error_code)
        form = self.sim.status_callback_params(message)
        path = _STATUS_PATH
        callback = last.status_callback or ""
        if callback.startswith(PUBLIC_URL + "/"):
            path = callback[len(PUBLIC_URL) :]
        mark = self._mark()
        started = time.perf_counter()
        response = await self.webhooks.post(path, form)
        webhook = time.perf_counter() - started
        if response.status_code in (404, 405):
            return StepObservation(
                skip=f"status step: the app has no POST {path} endpoint yet (HTTP {response.status_code})",
                http_status=response.status_code,
            )
        await self._settle()
        problems = [] if response.is_success else [_http_problem(response, path)]
        ran, intent = self._turn(mark)
        return self._observe(
            mark, await self._rest_since(mark), intent=intent, problems=problems, http_status=response.status_code,
            webhook=webhook, ran=ran,
        )

    # -- what Twilio does around a webhook -------------------------------------

    def _twilio_side(self, form: Mapping[str, str]) -> list[SentMessage]:
        """Twilio's part before it calls the bot: the WhatsApp window and its SMS keyword filter.

        With ``SMS_KEYWORD_REPLIES=twilio`` (the default) Twilio itself confirms
        STOP/START/HELP on SMS; the user receives that, so it counts as a reply
        (shown as ``twilio``), though the bot answered nothing.
        """
        self.sim.record_inbound_time(self.channel, user=self.user, bot=self.bot)
        keyword = twilio_keyword(self.sim, self.channel, user=self.user, bot=self.bot, body=form.get("Body", ""),
                                 button="ButtonPayload" in form)
        reply = apply_keyword(self.sim, keyword, self.channel, self.user, self.bot)
        return [] if reply is None else [self.sent(reply.to, reply.body, (), via="twilio")]

    def _twiml_replies(self, text: str) -> list[SentMessage]:
        """TwiML ``<Message>``s as sent messages, recorded at the local API like Twilio does (with SIDs)."""
        if not text.strip():
            return []
        try:
            messages = parse_twiml(text)
        except ET.ParseError as exc:
            raise ValueError(str(exc)) from None
        out: list[SentMessage] = []
        now = self.clock.now()
        for item in messages:
            to = item.to or self.channel.address(self.user)
            from_ = item.from_ or self.channel.address(self.bot)
            self.sim.record(
                SimMessage(
                    sid=self.sim.new_sid("MM" if item.media else "SM"), account_sid=self.account_sid,
                    channel=Channel.from_address(to)[0], direction="outbound-reply", origin=MessageOrigin.BOT,
                    from_=from_, to=to, body=item.body, status="queued", date_created=now, date_updated=now,
                    status_callback=item.status_callback,
                )
            )
            out.append(self.sent(to, item.body, item.media, via="twiml"))
        return out

    # -- observation -----------------------------------------------------------

    def _mark(self) -> _Mark:
        return _Mark(
            messages=len(self.sim.messages()),
            turns=len(self._results),
            calls=len(self.script.calls) if self.script is not None else 0,
            errors=len(self.script.errors) if self.script is not None else 0,
        )

    async def _settle(self) -> None:
        """Wait for what the step set going: late turns, the outbox, the local API's lifecycles."""
        for _ in range(10):
            pending = {f for f in getattr(self.services, "background", ()) if not f.done()}
            if pending:
                await asyncio.wait(pending, timeout=30)
            outbox = self.services.outbound.outbox
            if isinstance(outbox, InlineOutbox):
                await outbox.drain()
            await self.sim.drain()
            if not any(not f.done() for f in getattr(self.services, "background", ())):
                return

    async def _rest_since(self, mark: _Mark) -> list[SentMessage]:
        templates = self.sim.templates
        out: list[SentMessage] = []
        offers: list[tuple[str, Sequence[Choice]]] = []
        for message in self.sim.messages()[mark.messages :]:
            if message.direction != "outbound-api":
                continue
            sender = Channel.from_address(message.from_)[1] if message.from_ else None
            if self.cleanup_store and sender not in (None, self.bot):
                continue  # shared Redis: another conversation's bot number (a leftover job)
            template = None
            if message.content_sid:
                known = templates.get(message.content_sid)
                template = known.name if known is not None else message.content_sid
            else:
                template = await self._fallback_template(message.sid)
            out.append(self.sent(message.to, message.body, [m.url for m in message.media], via="rest",
                                 template=template, buttons=[b.title for b in message.buttons]))
            offers.append((message.sid, message.buttons))
        self.remember_buttons(offers)
        return out

    async def _fallback_template(self, sid: str) -> str | None:
        """The content template a plain-text REST message stands for, from the send ledger.

        SMS has no content templates: the sender sends a template's
        ``sms_fallback`` text as a Body and records the template's name in
        its ledger, so ``template:`` expectations hold on SMS too.
        """
        outbound = getattr(self.services, "outbound", None)
        ledger = outbound.sender.ledger if outbound is not None else SendLedger(Stores.beside(self.store).ledger)
        record = await ledger.message(sid)
        return record.template if record is not None else None

    def _last_outbound(self) -> SimMessage | None:
        """The message a status step reports on: the bot's latest that asked for status callbacks.

        Twilio only reports statuses where a ``StatusCallback`` was given (the
        REST sender gives one); without any such message, the latest the bot
        sent at all (a TwiML reply).
        """
        latest: SimMessage | None = None
        for message in reversed(self.sim.messages()):
            if message.direction not in ("outbound-api", "outbound-reply"):
                continue
            if message.status_callback:
                return message
            latest = latest or message
        return latest

    def _observe_turn(self, msg: InboundMessage, result: TurnResult, state: ConversationState) -> None:
        self._results.append(result)

    def _turn(self, mark: _Mark) -> tuple[bool, str | None]:
        """Whether a turn was committed since ``mark``, and the intent it resolved."""
        results = self._results[mark.turns :]
        if not results:
            return False, None
        return True, results[-1].intent

    def _observe(
        self,
        mark: _Mark,
        sent: Sequence[SentMessage],
        *,
        intent: str | None,
        problems: Sequence[str] = (),
        http_status: int | None = None,
        webhook: float | None = None,
        ran: bool = False,
    ) -> StepObservation:
        calls: tuple[ModelCall, ...] = ()
        problems = list(problems)
        if self.script is not None:
            calls = tuple(self.script.calls[mark.calls :])
            for error in dict.fromkeys(self.script.errors[mark.errors :]):
                hint = (
                    f"; add outputs to llm: (the bot asked {len(self.script.calls)} times in all)"
                    if "ran out" in error
                    else ""
                )
                problems.append(f"{error}{hint}")
        turns = self._results[mark.turns :]
        entities = dict(turns[-1].entities) if turns else {}
        return StepObservation(
            outcome=StepOutcome(sent=tuple(sent), intent=intent, entities=entities),
            problems=tuple(problems),
            http_status=http_status,
            webhook_seconds=webhook,
            turn_ran=ran,
            model_calls=calls,
        )


class RemoteConversation(_Conversation):
    """A conversation with a running server (``bot replay --url``): TwiML answers only.

    Each conversation texts from a fresh number of the same country and
    length as the transcript's ``user`` (the server keeps state and opt-outs
    between runs); messages to that number are reported as sent to ``user``.

    Example::

        async with RemoteConversation("http://127.0.0.1:8000", auth_token="...", channel=Channel.SMS,
                                      user="+14155550123") as conv:
            (await conv.step(UserStep("hi"))).outcome.sent
    """

    def __init__(
        self,
        url: str,
        *,
        auth_token: str,
        channel: Channel,
        user: str,
        bot: str = BOT_NUMBER,
        profile_name: str | None = None,
        account_sid: str = _DEV_ACCOUNT_SID,
        public_url: str | None = None,
        timeout: float = 20.0,
        twilio_keyword_replies: bool = True,
    ) -> None:
        self.transcript_user = user
        # Twilio's own STOP/START/HELP confirmations on SMS, played here as the
        # local simulator does in-process (no Twilio sits in front of the server).
        self.twilio_keyword_replies = twilio_keyword_replies
        self._opted_out = False
        super().__init__(
            channel=channel, user=_fresh_number(user), bot=bot, profile_name=profile_name, account_sid=account_sid
        )
        self.url = url.rstrip("/")
        self.public_url = (public_url or self.url).rstrip("/")
        self.auth_token = auth_token
        self.timeout = timeout
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> RemoteConversation:
        self._http = httpx.AsyncClient(base_url=self.url, timeout=self.timeout)
        self.webhooks = WebhookClient(self._http, auth_token=self.auth_token, public_base_url=self.public_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def post_inbound(self, body: bytes, headers: dict[str, str], form: dict[str, str] | None) -> StepObservation:
        assert self.webhooks is not None
        sent: list[SentMessage] = [] if form is None else self._twilio_keyword(form)
        started = time.perf_counter()
        try:
            response = await self.webhooks.http.post(_MESSAGES_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise ReplayError(f"cannot reach {self.url}{_MESSAGES_PATH}: {type(exc).__name__}: {exc}") from None
        webhook = time.perf_counter() - started
        problems: list[str] = []
        if response.status_code != 200:
            problem = _http_problem(response, _MESSAGES_PATH)
            if response.status_code == 403:
                problem += (
                    f"; replay signs with TWILIO_AUTH_TOKEN over {self.public_url}{_MESSAGES_PATH}: "
                    "the server's auth token and PUBLIC_BASE_URL must match"
                )
            problems.append(problem)
        elif response.text.strip():
            try:
                for item in parse_twiml(response.text):
                    to = item.to or self.channel.address(self.user)
                    if Channel.from_address(to)[1] == self.user:
                        to = self.channel.address(self.transcript_user)
                    sent.append(self.sent(to, item.body, item.media, via="twiml"))
            except Exception as exc:
                problems.append(f"the server's answer is not valid TwiML ({exc}): {_quote(_short(response.text))}")
        if form is None:
            if self._last_answer is not None and response.text != self._last_answer:
                problems.append(
                    "exactly-once broken: the retried delivery was not answered with the first answer byte for byte "
                    f"(first: {_quote(_short(self._last_answer))}, retry: {_quote(_short(response.text))})"
                )
        else:
            self._last_answer = response.text if response.status_code == 200 else None
        return StepObservation(
            outcome=StepOutcome(sent=tuple(sent)),
            problems=tuple(problems),
            http_status=response.status_code,
            webhook_seconds=webhook,
        )


    def _twilio_keyword(self, form: Mapping[str, str]) -> list[SentMessage]:
        if self.channel is not Channel.SMS or "ButtonPayload" in form:
            return []
        keyword = keyword_type(form.get("Body", ""), opted_out=self._opted_out)
        if keyword is OptOutType.STOP:
            self._opted_out = True
        elif keyword is OptOutType.START:
            self._opted_out = False
        if keyword is None or not self.twilio_keyword_replies:
            return []
        text = DEFAULT_KEYWORD_REPLIES[keyword.value]
        return [self.sent(self.channel.address(self.transcript_user), text, (), via="twilio")]


def _http_problem(response: httpx.Response, path: str) -> str:
    return f"POST {path} answered HTTP {response.status_code}: {_quote(_short(response.text))}"


def _fresh_number(user: str) -> str:
    """A random number with the same country code and length as ``user``."""
    digits = user.lstrip("+")
    keep = max(len(digits) - 7, 1)
    for _ in range(20):
        tail = "".join(str(secrets.randbelow(10)) for _ in range(len(digits) - keep))
        candidate = "+" + digits[:keep] + tail
        try:
            if phonenumbers.is_possible_number(phonenumbers.parse(candidate, None)):
                return candidate
        except phonenumbers.NumberParseException:
            continue
    return user


def _random_bot_number() -> str:
    # NANP 555 numbers: possible (so Twilio-shaped), never a real customer's.
    return "+1555" + "".join(str(secrets.randbelow(10)) for _ in range(7))


# --------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------


class ReplayRunner:
    """Replays transcripts and reports each conversation.

    ``settings`` gives the credentials, ``REDIS_URL`` (Redis instead of the
    memory store) and the business data dirs; replay never calls a real
    model (``LLM_MODEL`` is ignored). ``url`` replays against a running
    server instead. ``handler_factory`` replaces the Brain and
    ``store_factory`` the per-conversation store (tests of replay itself);
    ``share_handler`` builds the bot once for all conversations (see above).

    Example::

        runner = ReplayRunner(replay_settings(), concurrency=8)
        result = await runner.run_transcript(transcript)
        result.status, result.failure
    """

    def __init__(
        self,
        settings: Settings,
        *,
        url: str | None = None,
        public_url: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        handler_factory: HandlerFactory | None = None,
        share_handler: bool = True,
        bot_number: str = BOT_NUMBER,
        store_factory: Callable[[], ConversationStore] | None = None,
        keep_going: bool = False,
        chat_model: Any = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.settings = settings.model_copy(update={"llm_model": None})
        self.url = url
        self.public_url = public_url
        self.concurrency = concurrency
        self.handler_factory = handler_factory
        self.share_handler = share_handler
        self.bot_number = bot_number
        self.store_factory = store_factory
        # bot eval: run every step of a conversation even after one fails, and
        # answer every conversation with this model instead of the llm: scripts.
        self.keep_going = keep_going
        self.chat_model = chat_model
        self._shared: dict[bool, TurnHandler] = {}

    async def run(
        self,
        transcripts: Iterable[Transcript],
        *,
        on_result: Callable[[ConversationResult], None] | None = None,
    ) -> ReplayReport:
        """Replay every transcript (concurrently, bounded); ``on_result`` sees results in order."""
        started = time.perf_counter()
        limit = asyncio.Semaphore(self.concurrency)

        async def one(transcript: Transcript) -> ConversationResult:
            async with limit:
                return await self.run_transcript(transcript)

        with self._capturing_logs():
            tasks = [asyncio.ensure_future(one(t)) for t in transcripts]
            results: list[ConversationResult] = []
            try:
                for task in tasks:
                    result = await task
                    results.append(result)
                    if on_result is not None:
                        on_result(result)
            finally:
                for task in tasks:
                    task.cancel()
        return ReplayReport(tuple(results), time.perf_counter() - started, "url" if self.url else "in-process")

    @contextlib.contextmanager
    def _capturing_logs(self) -> Any:
        handler = _ScopeLogs(logging.ERROR)
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            yield
        finally:
            root.removeHandler(handler)

    async def run_transcript(self, transcript: Transcript) -> ConversationResult:
        """Replay one conversation from its first step; stops at the first failing step."""
        started = time.perf_counter()
        steps: list[StepResult] = []
        first_failure: str | None = None
        try:
            async with self._conversation(transcript) as (conversation, scope):
                for index, step in enumerate(transcript.turns):
                    if self.url is not None and (why := transcript.needs_local(step)):
                        reason = f"step {index + 1} {why}; a running server cannot replay it (--url)"
                        return _skipped(transcript, steps, index, reason, started)
                    result, text = await self._step(transcript, conversation, scope, index, step)
                    if result.status == "skipped":
                        return _skipped(transcript, steps, index, f"step {index + 1}: {result.notes[-1]}", started)
                    steps.append(result)
                    if text is not None and self.keep_going:
                        first_failure = first_failure or text
                    elif text is not None:
                        steps.extend(_not_run(transcript, index + 1))
                        return ConversationResult(
                            transcript, "failed", tuple(steps), failure=text, seconds=time.perf_counter() - started
                        )
        except Exception as exc:
            text = (
                f"{transcript.origin}: {_quote(transcript.name)} could not be replayed: "
                f"{type(exc).__name__}: {exc}\n" + _indent(_traceback_tail(exc))
            )
            steps.extend(_not_run(transcript, len(steps)))
            return ConversationResult(
                transcript, "failed", tuple(steps), failure=text, seconds=time.perf_counter() - started
            )
        if first_failure is not None:
            return ConversationResult(
                transcript, "failed", tuple(steps), failure=first_failure, seconds=time.perf_counter() - started
            )
        return ConversationResult(transcript, "passed", tuple(steps), seconds=time.perf_counter() - started)

    async def _step(
        self, transcript: Transcript, conversation: _Conversation, scope: _Scope | None, index: int, step: Step
    ) -> tuple[StepResult, str | None]:
        started = time.perf_counter()
        logged = len(scope.logs) if scope is not None else 0
        try:
            seen = await conversation.step(step)
        except ReplayError as exc:
            seen = StepObservation(problems=(str(exc),))
        except Exception as exc:
            seen = StepObservation(
                problems=(f"the app raised {type(exc).__name__}: {exc}\n{_indent(_traceback_tail(exc), 2)}",)
            )
        seconds = time.perf_counter() - started
        if seen.skip is not None:
            return StepResult(index, step, "skipped", notes=(seen.skip,), seconds=seconds), None

        expect = step.expect
        notes: list[str] = list(seen.notes)
        if expect is not None and self.url is not None and expect.intent is not None:
            notes.append(f"intent not checked (expected {expect.intent}): a running server does not report it")
            expect = replace(expect, intent=None)
        if expect is not None and self.url is not None and expect.slots:
            notes.append("slots not checked: a running server does not report them")
            expect = replace(expect, slots=())
        failures = list(seen.problems)
        if expect is not None:
            failures.extend(check(expect, seen.outcome, user=transcript.user))
        result = StepResult(
            index=index,
            step=step,
            status="failed" if failures else "passed",
            sent=seen.outcome.sent,
            intent=seen.outcome.intent,
            entities=seen.outcome.entities,
            failures=tuple(failures),
            notes=tuple(notes),
            http_status=seen.http_status,
            webhook_seconds=seen.webhook_seconds,
            seconds=seconds,
            model_calls=seen.model_calls,
        )
        if not failures:
            return result, None
        text = format_failure(transcript, index, step, failures, seen.outcome.sent)
        if seen.model_calls:
            text += "\n" + _describe_calls(seen.model_calls)
        if scope is not None and len(scope.logs) > logged:
            text += "\n  the app logged:\n" + "\n".join(
                f"    {_describe_record(record)}" for record in scope.logs[logged:]
            )
        return result, text

    @contextlib.asynccontextmanager
    async def _conversation(self, transcript: Transcript) -> AsyncIterator[tuple[_Conversation, _Scope | None]]:
        if self.url is not None:
            async with RemoteConversation(
                self.url,
                auth_token=self.settings.twilio_auth_token.get_secret_value(),
                channel=transcript.channel,
                user=transcript.user,
                bot=self.bot_number,
                profile_name=transcript.profile_name,
                account_sid=self.settings.twilio_account_sid,
                public_url=self.public_url,
                twilio_keyword_replies=self.settings.sms_keyword_replies == "twilio",
            ) as remote:
                yield remote, None
            return

        clock = FrozenClock(transcript.now or DEFAULT_NOW)
        redis = self.settings.redis_url if self.store_factory is None else None
        store: ConversationStore
        if self.store_factory is not None:
            store = self.store_factory()
        else:
            store = RedisStore.from_url(redis) if redis else MemoryStore()
        # In a shared Redis, a bot number of its own isolates the conversation.
        bot = _random_bot_number() if redis else self.bot_number
        script = ModelScript.of(transcript.llm) if transcript.llm and self.chat_model is None else None
        scope = _Scope(clock=clock, store=store, script=script)
        token = _SCOPE.set(scope)
        try:
            has_model = script is not None or self.chat_model is not None
            handler = self.shared_handler(has_model=has_model)
            chat_model = ScriptedChatModel.from_script(script) if script is not None else self.chat_model
            async with InProcessConversation(
                self.settings,
                channel=transcript.channel,
                user=transcript.user,
                bot=bot,
                profile_name=transcript.profile_name,
                clock=clock,
                store=store,
                chat_model=chat_model,
                script=script,
                handler=handler,
                cleanup_store=redis is not None,
                dial_status=transcript.dial_status,
            ) as conversation:
                yield conversation, scope
        finally:
            _SCOPE.reset(token)

    def shared_handler(self, *, has_model: bool) -> TurnHandler | None:
        """The bot shared by conversations with (or without) ``llm:``; None when each app builds its own.

        Built on first use, with a clock, store and model that resolve to the
        current conversation's.

        Example::

            brain = runner.shared_handler(has_model=False)
        """
        if not self.share_handler:
            return None if self.handler_factory is None else self._build(has_model=has_model)
        if has_model not in self._shared:
            self._shared[has_model] = self._build(has_model=has_model)
        return self._shared[has_model]

    def _build(self, *, has_model: bool) -> TurnHandler:
        from bot.brain import build_handler
        from bot.templates import ReplyTemplates

        if self.handler_factory is None:
            return build_handler(
                self.settings,
                templates=ReplyTemplates(Path(self.settings.prompts_dir)),
                clock=_ScopedClock(),
                store=_scoped_store(),
                chat_model=(self.chat_model or _ScopedChatModel()) if has_model else None,
                notify_staff=_ScopedStaffNotifier(),
            )
        return self.handler_factory(
            self.settings,
            templates=ReplyTemplates(Path(self.settings.prompts_dir)),
            clock=_ScopedClock(),
            store=_scoped_store(),
            chat_model=(self.chat_model or _ScopedChatModel()) if has_model else None,
        )


def _skipped(
    transcript: Transcript, steps: list[StepResult], index: int, reason: str, started: float
) -> ConversationResult:
    """Skipped from step ``index`` to the end: later steps depend on what it would have done."""
    if index:
        reason += f"; steps 1-{index} passed" if index > 1 else "; step 1 passed"
    rest = [StepResult(i, s, "skipped", notes=(reason,)) for i, s in enumerate(transcript.turns[index:], start=index)]
    return ConversationResult(
        transcript, "skipped", (*steps, *rest), reason=reason, seconds=time.perf_counter() - started
    )


def _not_run(transcript: Transcript, start: int) -> list[StepResult]:
    return [StepResult(i, s, "not run") for i, s in enumerate(transcript.turns[start:], start=start)]


def _describe_calls(calls: Sequence[ModelCall]) -> str:
    lines = [f"  the bot called the model {len(calls)} time{'s' if len(calls) != 1 else ''} in this step:"]
    for call in calls:
        last = call.messages[-1].content if call.messages else ""
        prompt = _quote(_short(last if isinstance(last, str) else str(last), 120))
        answer = _quote(_short(call.response, 120)) if call.response is not None else f"no answer ({call.error})"
        lines.append(f"    {call.index + 1}. asked {prompt} -> {answer}")
    return "\n".join(lines)


def _describe_record(record: logging.LogRecord) -> str:
    text = f"{record.levelname} {record.name}: {record.getMessage()}"
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        text += f" ({type(exc).__name__}: {exc})"
    return text


def _traceback_tail(exc: BaseException, frames: int = 3) -> str:
    summary = traceback.extract_tb(exc.__traceback__)[-frames:]
    return "".join(traceback.format_list(summary)).rstrip()


def _indent(text: str, width: int = 2) -> str:
    pad = " " * width
    return "\n".join(pad + line for line in text.splitlines())


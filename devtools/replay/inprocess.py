"""A replayed conversation with the app in this process: the full replay (and ``bot chat``).

Example::

    async with InProcessConversation(settings, channel=Channel.SMS, user="+14155550123") as conv:
        (await conv.step(UserStep("hi"))).outcome.sent
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from typing import Any

from twilio.rest import Client

from bot.clock import Clock, FrozenClock
from bot.compliance.ledger import MemoryConsentLedger
from bot.engine import TurnHandler
from bot.handoff import outbox_staff_notifier
from bot.messages import Channel, Choice, InboundMessage, TurnResult
from bot.outbound.ledger import SendLedger
from bot.outbound.outbox import InlineOutbox
from bot.outbound.templates import ContentTemplates
from bot.settings import Settings
from bot.storage import ConversationStore, MemoryStore, RedisStore, Stores
from bot.storage.base import ConversationKey, ConversationState
from devtools.replay.asgi import AppClient
from devtools.replay.bot_started import held_now, queue_broadcast_step
from devtools.replay.config import BOT_NUMBER, DEFAULT_NOW, MESSAGES_PATH, PUBLIC_URL, STATUS_PATH, TWILIO_API_URL
from devtools.replay.conversation import Conversation, Mark, http_problem
from devtools.replay.errors import ReplayError
from devtools.replay.expect import SentMessage, StepOutcome
from devtools.replay.report import StepObservation
from devtools.replay.scope import SCOPE
from devtools.replay.scripted_model import ModelCall, ModelScript
from devtools.replay.staff import staff_jobs
from devtools.replay.text import quote, short
from devtools.replay.transcript import (
    AdvanceStep,
    BroadcastStep,
    CallStep,
    DigitsStep,
    DuplicateStep,
    HangupStep,
    RunStep,
    StatusStep,
    Step,
    TextStep,
    UserStep,
)
from devtools.replay.transport import SimulatorHttpClient, absorbed_callbacks
from devtools.simulator import (
    MessageOrigin,
    SimMessage,
    Simulator,
    SimulatorConfig,
)
from devtools.simulator.calls import CallPlayer, CallTurn
from devtools.simulator.content import simulator_templates
from devtools.simulator.inbound import apply_keyword, parse_twiml, twilio_keyword
from devtools.simulator.shared import simulator_app_for
from devtools.simulator.templates import ContentTemplate
from devtools.webhook_client import WebhookClient

# The simulator's form of a content-template registry, per registry (the app's is memoised
# per process, bot/memo.py): built once, not once per conversation. Its entries are frozen.
_SIMULATOR_TEMPLATES: weakref.WeakKeyDictionary[ContentTemplates, tuple[ContentTemplate, ...]] = (
    weakref.WeakKeyDictionary()
)


def _simulator_templates(registry: ContentTemplates) -> tuple[ContentTemplate, ...]:
    found = _SIMULATOR_TEMPLATES.get(registry)
    if found is None:
        found = _SIMULATOR_TEMPLATES[registry] = tuple(simulator_templates(registry))
    return found


class InProcessConversation(Conversation):
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
            callbacks = absorbed_callbacks()
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
            # One app for the process, routed to this conversation's simulator (building one is ~100 ms).
            twilio_http = SimulatorHttpClient(factory=lambda: simulator_app_for(sim))
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
            # What staff do (mark a visit, record marketing consent) as jobs: run: "staff:completed".
            self.services.jobs.update(staff_jobs(self.services, self.key))
            # The local API knows the ContentSids of the app's own registry.
            for template in _simulator_templates(self.services.outbound.templates):
                self._sim.register_template(template)
            scope = SCOPE.get()
            if scope is not None and self.services.business is not None:
                scope.notify_staff = outbox_staff_notifier(settings, self.services.outbound.outbox,
                                                           self.services.business)
                scope.staff_mail, scope.contacts = self.services.staff_mail, self.services.contacts
                scope.schedule_return = self.services.outbound.outbox.submit_handoff_return
            # The intent of each step comes from the engine, not the HTTP answer.
            self.services.engine.observers.append(self._observe_turn)
            if self.cleanup_store:
                self._stack.push_async_callback(self._clean_store)
            http = AppClient(app, base_url="http://replay.internal")
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

    async def _voice_retry(self, mark: Mark, started: float) -> StepObservation:
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
        response = await self.webhooks.http.post(MESSAGES_PATH, content=body, headers=headers)
        webhook = time.perf_counter() - started
        await self._settle()
        problems: list[str] = []
        twiml: list[SentMessage] = []
        if response.status_code != 200:
            problems.append(http_problem(response, "/twilio/messages"))
        else:
            try:
                twiml = self._twiml_replies(response.text)
            except ValueError as exc:
                problems.append(f"the webhook's answer is not valid TwiML ({exc}): {quote(short(response.text))}")
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
            mark = self._mark()
            self.clock.advance(step.delta)
            # What the clock released (messages held for quiet hours) is this step's.
            await self._settle()
            return self._observe(mark, await self._rest_since(mark), intent=None)
        if isinstance(step, RunStep):
            return await self._run_job(step.job)
        if isinstance(step, BroadcastStep):
            return await self._broadcast(step)
        if isinstance(step, StatusStep):
            return await self._status(step)
        raise ReplayError(f"unknown step {step.describe()}")

    async def _run_job(self, name: str) -> StepObservation:
        jobs: Mapping[str, Callable[[], Awaitable[Any]]] = getattr(self.services, "jobs", None) or {}
        job = jobs.get(name)
        if job is None:
            known = ", ".join(sorted(jobs)) if jobs else "none (runtime.jobs is empty)"
            return StepObservation(problems=(f"unknown job {quote(name)}; this app's scheduled jobs: {known}",))
        return await self._bot_started(job, f"job {quote(name)}")

    async def _broadcast(self, step: BroadcastStep) -> StepObservation:
        key = ConversationKey(self.channel, self.bot, self.user)
        return await self._bot_started(lambda: queue_broadcast_step(self.services, step, key), "broadcast")

    async def _bot_started(self, start: Callable[[], Awaitable[Any]], what: str) -> StepObservation:
        """Run something that makes the bot send on its own; its messages and its quiet-hours holds."""
        key = ConversationKey(self.channel, self.bot, self.user)
        held_before = await held_now(self.services, key)
        mark = self._mark()
        problems: list[str] = []
        try:
            await start()
        except Exception as exc:
            problems.append(f"{what} raised {type(exc).__name__}: {exc}")
        await self._settle()
        ran, intent = self._turn(mark)
        held = [until for ref, until in (await held_now(self.services, key)).items() if ref not in held_before]
        return self._observe(mark, await self._rest_since(mark), intent=intent, problems=problems, ran=ran,
                             held=held)

    async def _status(self, step: StatusStep) -> StepObservation:
        assert self.webhooks is not None
        last = self._last_outbound()
        if last is None:
            return StepObservation(
                problems=("status: the bot has not sent any message yet, so there is none to report a status for",)
            )
        message = replace(last, status=step.status, error_code=step.error_code)
        form = self.sim.status_callback_params(message)
        path = STATUS_PATH
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
        problems = [] if response.is_success else [http_problem(response, path)]
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

    def _mark(self) -> Mark:
        return Mark(
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

    async def _rest_since(self, mark: Mark) -> list[SentMessage]:
        templates = self.sim.templates
        out: list[SentMessage] = []
        offers: list[tuple[str, Sequence[Choice], str | None]] = []
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
                                 template=template, buttons=[b.title for b in message.buttons],
                                 list_button=message.list_button))
            offers.append((message.sid, message.buttons, message.list_button))
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

    def _turn(self, mark: Mark) -> tuple[bool, str | None]:
        """Whether a turn was committed since ``mark``, and the intent it resolved."""
        results = self._results[mark.turns :]
        if not results:
            return False, None
        return True, results[-1].intent

    def _observe(
        self,
        mark: Mark,
        sent: Sequence[SentMessage],
        *,
        intent: str | None,
        problems: Sequence[str] = (),
        http_status: int | None = None,
        webhook: float | None = None,
        ran: bool = False,
        held: Sequence[str] = (),
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
            outcome=StepOutcome(sent=tuple(sent), intent=intent, entities=entities, held=tuple(held)),
            problems=tuple(problems),
            http_status=http_status,
            webhook_seconds=webhook,
            turn_ran=ran,
            model_calls=calls,
        )

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
import gc
import logging
import secrets
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from bot.clock import Clock, FrozenClock
from bot.engine import TurnHandler
from bot.memo import sources_unchanged
from bot.settings import Settings
from bot.storage import ConversationStore, MemoryStore, RedisStore
from devtools.replay.config import BOT_NUMBER, DEFAULT_CONCURRENCY, DEFAULT_NOW, PUBLIC_URL, replay_settings
from devtools.replay.conversation import Conversation
from devtools.replay.errors import ReplayError
from devtools.replay.expect import check, format_failure
from devtools.replay.inprocess import InProcessConversation
from devtools.replay.remote import RemoteConversation
from devtools.replay.report import ConversationResult, ReplayReport, StepObservation, StepResult
from devtools.replay.scope import (
    SCOPE,
    Scope,
    ScopedChatModel,
    ScopedClock,
    ScopedReturnScheduler,
    ScopedStaffNotifier,
    ScopeLogs,
    scoped_contacts,
    scoped_staff_mail,
    scoped_store,
)
from devtools.replay.scripted_model import ModelCall, ModelScript, ScriptedChatModel
from devtools.replay.text import quote, short
from devtools.replay.transcript import Step, Transcript
from devtools.replay.transport import SimulatorHttpClient

# The runner is where callers start; what they use with it is importable from here too.
__all__ = [
    "BOT_NUMBER",
    "DEFAULT_CONCURRENCY",
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


# The collector's first threshold while replaying (Python's default is 700 allocations).
YOUNG_GENERATION = 10_000


@contextlib.contextmanager
def _young_garbage_dies_young() -> Iterator[None]:
    """A larger first generation for the run, the collector's thresholds as they were after it.

    Each conversation builds an app (a few thousand objects in reference
    cycles) that is garbage a few steps later. With the default threshold
    of 700 it lived through many young collections, was promoted to the
    oldest generation and freed only by full collections (two per round of
    the project's transcripts, each walking every live object): about 8 % of
    a replay's CPU went to the collector. With 10,000 most of it is freed
    young and full collections no longer happen in a round: about 4 %.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(before[0], YOUNG_GENERATION), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _random_bot_number() -> str:
    # NANP 555 numbers: possible (so Twilio-shaped), never a real customer's.
    return "+1555" + "".join(str(secrets.randbelow(10)) for _ in range(7))


class ReplayRunner:
    """Replays transcripts and reports each conversation.

    ``settings`` gives the credentials, ``REDIS_URL`` (Redis instead of the
    memory store) and the business data dirs; replay never calls a real
    model (``LLM_MODEL`` is ignored). ``url`` replays against a running
    server instead. ``handler_factory`` replaces the Brain and
    ``store_factory`` the per-conversation store (tests of replay itself);
    ``share_handler`` builds the bot once for all conversations (:mod:`devtools.replay.scope`).

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

        # Every conversation builds its app from the same prompt and intent files.
        with self._capturing_logs(), sources_unchanged(), _young_garbage_dies_young():
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
        handler = ScopeLogs(logging.ERROR)
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
                f"{transcript.origin}: {quote(transcript.name)} could not be replayed: "
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
        self, transcript: Transcript, conversation: Conversation, scope: Scope | None, index: int, step: Step
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
    async def _conversation(self, transcript: Transcript) -> AsyncIterator[tuple[Conversation, Scope | None]]:
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
        scope = Scope(clock=clock, store=store, script=script)
        token = SCOPE.set(scope)
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
            SCOPE.reset(token)

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
            brain = build_handler(
                self.settings,
                templates=ReplyTemplates(Path(self.settings.prompts_dir)),
                clock=ScopedClock(),
                store=scoped_store(),
                chat_model=(self.chat_model or ScopedChatModel()) if has_model else None,
                notify_staff=ScopedStaffNotifier(),
                staff_mail=scoped_staff_mail(),
                contacts=scoped_contacts(),
            )
            brain.handoff.schedule_return = ScopedReturnScheduler()
            return brain
        return self.handler_factory(
            self.settings,
            templates=ReplyTemplates(Path(self.settings.prompts_dir)),
            clock=ScopedClock(),
            store=scoped_store(),
            chat_model=(self.chat_model or ScopedChatModel()) if has_model else None,
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
        prompt = quote(short(last if isinstance(last, str) else str(last), 120))
        answer = quote(short(call.response, 120)) if call.response is not None else f"no answer ({call.error})"
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


"""One conversational turn, exactly once and in order.

:meth:`Engine.handle` is the whole inbound path below HTTP:

1. ``begin_turn`` (one store round trip): a retried ``MessageSid`` gets the
   cached answer; otherwise the message joins its conversation's FIFO queue
   and waits its turn (other conversations run concurrently).
2. Compliance (STOP/START/HELP) before any intent logic.
3. The turn handler (the Brain) on a working copy of the state.
4. The channel adapter's ``deliver`` renders the answer (TwiML) -- possibly
   sending REST messages -- and the engine keeps only what may be sent.
5. ``commit_turn`` (one round trip) saves state, opt-out and the answer.

A crash anywhere before the commit aborts the turn: nothing is written and the
next message of the conversation proceeds.

Example::

    engine = Engine(store=store, clock=SystemClock(), compliance=compliance,
                    handler=brain, settings=settings, metrics=Metrics())
    handled = await engine.handle(msg, deliver=render_twiml)
    handled.answer  # '<?xml ...><Response><Message>Hi!</Message></Response>'
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from bot.channels import profile_of, records_key
from bot.clock import Clock
from bot.compliance import Compliance
from bot.errors import BotError, LockTimeoutError, StoreError
from bot.messages import InboundMessage, TurnResult
from bot.observability import Metrics, mask_phone, mask_text
from bot.settings import Settings
from bot.storage.base import (
    ConversationKey,
    ConversationState,
    ConversationStore,
    HistoryEntry,
    TurnStart,
    TurnStatus,
)

log = logging.getLogger("bot.engine")


@dataclass(slots=True)
class TurnContext:
    """What a turn handler sees: the message, a working copy of the state, time."""

    message: InboundMessage
    state: ConversationState
    now: datetime
    clock: Clock


class TurnHandler(Protocol):
    """The Brain: decides what to say. Mutates ``ctx.state`` freely."""

    async def handle(self, ctx: TurnContext) -> TurnResult: ...


Deliver = Callable[[InboundMessage, TurnResult, ConversationState], Awaitable[str]]
TurnObserver = Callable[[InboundMessage, TurnResult, ConversationState], None]


@dataclass(frozen=True, slots=True)
class HandledTurn:
    """The outcome the webhook serves: ``answer`` is the exact response body."""

    answer: str
    result: TurnResult | None
    duplicate: bool = False


class TurnFailedError(BotError):
    """A turn crashed; state is untouched. ``__cause__`` holds the original error.

    ``may_reply`` is False when the user is opted out: not even an apology.
    """

    def __init__(self, message: str, *, may_reply: bool) -> None:
        super().__init__(message)
        self.may_reply = may_reply


class Engine:
    """Runs turns. Stateless itself: everything lives in the store."""

    def __init__(
        self,
        *,
        store: ConversationStore,
        clock: Clock,
        compliance: Compliance,
        handler: TurnHandler,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.store = store
        self.clock = clock
        self.compliance = compliance
        self.handler = handler
        self.settings = settings
        self.metrics = metrics
        # Called after each committed turn (the dev conversation view, analytics
        # later). Observers must be quick and must not raise.
        self.observers: list[TurnObserver] = []
        # Background undos of turns begun during a Redis hang (strong references).
        self._cleanups: set[asyncio.Future[None]] = set()

    async def acquire(self, key: ConversationKey, event_id: str, token: str,
                      joined: Callable[[], None] | None = None) -> TurnStart:
        """Wait for ``event_id``'s turn in ``key``'s queue: ``ACQUIRED`` (its state loaded), or
        ``DUPLICATE`` when it ran already; :class:`LockTimeoutError` after ``LOCK_WAIT_SECONDS``.

        ``joined`` is called once the message holds its place in the queue (the
        first ``begin_turn`` answered): a message that comes after it queues behind it.

        Messages take it in :meth:`handle`; timed work on a conversation (the
        hand-off's return, bot/handoff_return.py) takes a turn the same way, so it
        never races a message.
        """
        lease = self.settings.lock_lease_seconds
        deadline = time.monotonic() + self.settings.lock_wait_seconds
        pause = 0.002
        while True:
            try:
                start = await self.store.begin_turn(key, event_id, token, lease_seconds=lease)
            except StoreError:
                self._clean_up_later(key, event_id, token)
                raise
            if joined is not None:
                joined()
                joined = None
            if start.status in (TurnStatus.ACQUIRED, TurnStatus.DUPLICATE):
                return start
            if time.monotonic() >= deadline:
                await self.store.abort_turn(key, event_id, token)
                self.metrics.errors.labels("lock_timeout").inc()
                raise LockTimeoutError(
                    f"conversation busy for {self.settings.lock_wait_seconds}s ({start.status.value})"
                )
            # Poll with a short, growing pause: a turn takes milliseconds.
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.025)

    async def handle(self, msg: InboundMessage, *, deliver: Deliver,
                     joined: Callable[[], None] | None = None) -> HandledTurn:
        """Run (or replay from cache) the turn for ``msg``.

        ``joined`` is called once ``msg`` holds its place in its conversation's
        queue (see :meth:`acquire`): the webhook acknowledges a late turn only then.
        """
        key = ConversationKey(msg.channel, msg.bot, msg.user)
        token = secrets.token_hex(8)
        lease = self.settings.lock_lease_seconds
        start = await self.acquire(key, msg.event_id, token, joined)
        if start.status is TurnStatus.DUPLICATE:
            self.metrics.duplicates.inc()
            answer = start.answer or ""
            if answer and start.opted_out and not self._may_repeat_to_opted_out(msg):
                # Cached before a STOP: the user opted out since; a retry gets nothing.
                answer = ""
                log.info("duplicate delivery after opt-out: cached answer withheld",
                         extra={"fields": {"sid": msg.event_id}})
            else:
                log.info("duplicate delivery", extra={"fields": {"sid": msg.event_id}})
            return HandledTurn(answer=answer, result=None, duplicate=True)

        # Renew the lease only if the turn is still running after a third of
        # it: a timer, so fast turns (nearly all) never create a task for it.
        renewal: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            lease / 3,
            lambda: renewal.append(asyncio.ensure_future(self._keep_lease(key, msg.event_id, token, lease))),
        )
        try:
            return await self._run(msg, key, token, start.state, start.opted_out, deliver)
        except StoreError:
            await self._abort_quietly(key, msg.event_id, token)
            raise
        except Exception as exc:
            await self._abort_quietly(key, msg.event_id, token)
            self.metrics.errors.labels("turn").inc()
            log.exception(
                "turn failed",
                extra={"fields": {"sid": msg.event_id, "user": mask_phone(msg.user)}},
            )
            raise TurnFailedError(str(exc), may_reply=not start.opted_out) from exc
        finally:
            timer.cancel()
            for task in renewal:
                task.cancel()

    def _may_repeat_to_opted_out(self, msg: InboundMessage) -> bool:
        """Whether a retry of ``msg`` may get its cached answer while the user is opted out.

        Only when ``msg`` is itself an opt-out (its answer is the one allowed
        confirmation) or a help request: anything else was answered before the
        STOP that came after it.
        """
        return self.compliance.classify(msg, opted_out=True) in ("opt_out", "help")

    async def _keep_lease(self, key: ConversationKey, sid: str, token: str, lease: float) -> None:
        """Renew the turn's lease while a slow turn (a model call) runs.

        Fast turns finish before the first renewal and pay nothing; a process
        that dies stops renewing, and the next message skips it after ``lease``.
        """
        while True:
            try:
                await self.store.begin_turn(key, sid, token, lease_seconds=lease)
            except StoreError:
                log.warning("lease renewal failed", extra={"fields": {"sid": sid}})
            await asyncio.sleep(lease / 3)

    def _clean_up_later(self, key: ConversationKey, sid: str, token: str) -> None:
        """Undo a ``begin_turn`` whose answer never came, once Redis answers again.

        A hung Redis (SIGSTOP, a long fork) still holds the script we sent and
        runs it when it wakes: our token then heads the conversation's queue
        and blocks it for a whole lease, though nobody runs the turn. Retried
        in the background until Redis answers (the script ran by then) or the
        lease is over anyway.
        """

        async def clean_up() -> None:
            deadline = time.monotonic() + self.settings.lock_lease_seconds
            pause = 0.2
            while time.monotonic() < deadline:
                try:
                    await self.store.abort_turn(key, sid, token)
                    return
                except StoreError:
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 2.0)

        task = asyncio.ensure_future(clean_up())
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _abort_quietly(self, key: ConversationKey, sid: str, token: str) -> None:
        try:
            await self.store.abort_turn(key, sid, token)
        except StoreError:
            # Redis away (a failover): keep trying in the background, so the
            # conversation is free once it is back, not only when the lease lapses.
            log.warning("abort failed; retrying until Redis answers", extra={"fields": {"sid": sid}})
            self._clean_up_later(key, sid, token)

    async def _run(
        self,
        msg: InboundMessage,
        key: ConversationKey,
        token: str,
        saved: ConversationState | None,
        opted_out: bool,
        deliver: Deliver,
    ) -> HandledTurn:
        state = saved or ConversationState.new(key)
        profile = profile_of(msg.channel)
        shared = records_key(key)
        if shared != key:
            # A call shares the texting conversation's opt-out (a separate key).
            opted_out = await self.store.is_opted_out(shared)
        now = self.clock.now()
        state.last_inbound_at = now.timestamp()
        state.turns += 1

        # Compliance first (bot/compliance): it may also clear the state, write
        # the consent ledger and tell staff, idempotently per MessageSid.
        outcome = await self.compliance.handle(msg, state=state, opted_out=opted_out, now=now)
        turn_msg = msg
        if outcome is not None and outcome.forward is not None:
            # An answer to compliance's own question that is meant for the Brain.
            turn_msg, outcome = outcome.forward, None
        new_opt_out: bool | None = None
        if outcome is not None:
            result = TurnResult(replies=outcome.replies, intent=outcome.intent)
            new_opt_out = outcome.opted_out
            if new_opt_out is not None and new_opt_out != opted_out:
                self.metrics.opt_outs.labels(msg.channel.value, outcome.action).inc()
            log.info(
                "compliance keyword",
                extra={"fields": {"action": outcome.action, "user": mask_phone(msg.user)}},
            )
        elif opted_out and profile.opt_out_silences:
            # Opted out: record that they wrote, answer nothing, run no intent logic.
            result = TurnResult(intent=None)
        else:
            result = await self.handler.handle(
                TurnContext(message=turn_msg, state=state, now=now, clock=self.clock)
            )

        final_opt_out = opted_out if new_opt_out is None else new_opt_out
        if final_opt_out and profile.opt_out_silences:
            # The one rule that has no exception: an opted-out user gets
            # nothing but keyword answers, whatever the handler produced.
            result = replace(result, replies=tuple(r for r in result.replies if r.compliance))

        limit = self.settings.history_limit
        state.remember(
            HistoryEntry(now.timestamp(), "user", _history_text(msg), result.intent), limit
        )
        for reply in result.replies:
            state.remember(HistoryEntry(now.timestamp(), "bot", reply.text[:160]), limit)

        if shared != key and new_opt_out is not None:
            # Before the commit: a crash after it must not lose the opt-out.
            await self.store.set_opted_out(shared, new_opt_out)
            new_opt_out = None
        answer = await deliver(msg, result, state)
        committed = await self.store.commit_turn(
            key,
            msg.event_id,
            token,
            state=state,
            answer=answer,
            state_ttl=self.settings.conversation_ttl_seconds,
            answer_ttl=min(self.settings.dedupe_answer_ttl_seconds, self.settings.dedupe_ttl_seconds),
            seen_ttl=self.settings.dedupe_ttl_seconds,
            opted_out=new_opt_out,
        )
        if not committed:
            raise StoreError("turn lease lapsed before commit; nothing was saved")
        self.metrics.turns.labels(msg.channel.value, result.intent or "none").inc()
        for observer in self.observers:
            try:
                observer(msg, result, state)
            except Exception:  # an observer bug must not fail a committed turn
                log.exception("turn observer failed")
        log.info(
            "turn",
            extra={
                "fields": {
                    "sid": msg.event_id,
                    "channel": msg.channel.value,
                    "user": mask_phone(msg.user),
                    "body": mask_text(msg.body),
                    "intent": result.intent,
                    "replies": len(result.replies),
                }
            },
        )
        return HandledTurn(answer=answer, result=result)


def _history_text(msg: InboundMessage) -> str:
    # History feeds the model and the conversation view; keep it short.
    if msg.button_payload:
        return f"[button] {msg.button_text or msg.button_payload}"[:160]
    if msg.location is not None:
        return "[location]"
    text = msg.body[:160]
    if msg.media:
        text = f"[{len(msg.media)} media] {text}".strip()
    return text

"""The outbox: durable "send this later" and "finish this turn" for every process.

Web handlers, flows, reminders and broadcasts do not call Twilio inline when
the work may outlive them; they hand it to an :class:`Outbox`:

- :class:`ArqOutbox` (``REDIS_URL`` set): an arq job on the same Redis. Job
  ids come from the idempotency key, so arq itself drops a second submit
  while the first is queued, and a job a crashed worker held runs again
  (the sender's ledger makes that re-run send nothing twice).
- :class:`InlineOutbox` (no Redis: development, the replay runner, tests):
  asyncio tasks in this process, with the same semantics while it lives;
  ``await outbox.drain()`` waits for everything pending.

:func:`rest_deliverer` is the engine ``Deliver`` for turns answered by REST
(late replies, WhatsApp buttons): it sends the turn's replies in order and
returns the empty TwiML.

What the jobs need of the process is one typed :class:`OutboxJobs`, built
at the composition root (:mod:`bot.runtime`), not the whole runtime.

Example::

    outbox = runtime.require_outbound().outbox
    await outbox.submit(SendRequest(key=key, body="Your results are in",
                                    idempotency_key="results:42"), delay=5)
    await outbox.submit_turn(msg, delay=31)       # re-run it if the web process dies
    deliver = rest_deliverer(runtime.outbox_jobs)  # engine.handle(msg, deliver=deliver)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Protocol

from arq.connections import ArqRedis

from bot.channels import profile_of
from bot.engine import Deliver, TurnFailedError
from bot.errors import BotError, ChannelSendError, RecipientOptedOutError, StoreError, TemplateError
from bot.languages.recipients import speaking_kept
from bot.messages import Channel, InboundMessage, Reply, TemplateMessage, TurnResult
from bot.observability import mask_phone
from bot.outbound.errors import OutsideWindowError, RecipientUnreachableError, SendDeferred, SendHeld
from bot.outbound.ledger import ref_for
from bot.outbound.models import SendRequest, inbound_to_dict
from bot.storage.base import ConversationKey, ConversationState
from bot.storage.connect import queue_pool
from bot.storage.queue import enqueue

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.engine import Engine
    from bot.handoff_return import HandoffReturns
    from bot.observability import Metrics
    from bot.outbound.campaigns import Campaigns, Pacer
    from bot.outbound.sender import Sender
    from bot.outbound.templates import ContentTemplates
    from bot.quiet_hours import Hold
    from bot.templates import ReplyTemplates

log = logging.getLogger("bot.outbound")

JOB_SEND: Final = "send"
JOB_BROADCAST: Final = "broadcast"
JOB_RUN_TURN: Final = "run_turn"
JOB_REMINDERS: Final = "reminders"
JOB_HANDOFF_RETURN: Final = "handoff_return"
#: Waits between tries of a job that failed with a retryable error.
RETRY_DELAYS: Final = (2.0, 10.0, 30.0, 120.0)
#: Seconds between replies of one turn handed to the outbox (they keep their order).
REPLY_SPACING: Final = 1.0
#: The template that re-opens a closed WhatsApp window, if the registry has it.
WELCOME_BACK: Final = "welcome_back"


class Outbox(Protocol):
    """Durable hand-off of sends and turns; see the module docstring."""

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        """Send ``request`` after ``delay`` seconds; at most once per idempotency key."""
        ...

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        """Re-run ``message``'s turn after ``delay`` if it is still unanswered.

        The job calls ``engine.handle(message, deliver=rest_deliverer(...))``;
        the engine's exactly-once check makes it a no-op when the turn was
        answered (its process did not die).
        """
        ...

    async def submit_held(self, request: SendRequest, hold: Hold) -> None:
        """Send ``request`` at ``hold.release_at`` (quiet hours), under a job id of its own."""
        ...

    async def submit_handoff_return(self, key: ConversationKey, at: float) -> None:
        """Check at ``at`` (epoch seconds) whether ``key``'s hand-off went idle, and bring the bot back
        (:mod:`bot.handoff_return`); once per conversation and time."""
        ...

    async def close(self) -> None: ...


def held_job_id(request: SendRequest, hold: Hold) -> str:
    """The released send's job id: apart from the job that held it, one per release time."""
    return f"{send_job_id(request)}:held:{int(hold.release_at.timestamp())}"


def send_job_id(request: SendRequest) -> str:
    """arq job id for a send: a hash of the idempotency key (no phone numbers in Redis keys)."""
    return f"{JOB_BROADCAST if request.campaign else JOB_SEND}:{ref_for(request.idempotency_key)}"


def turn_job_id(message: InboundMessage) -> str:
    return f"{JOB_RUN_TURN}:{message.event_id}"


def handoff_return_job_id(key: ConversationKey, at: float) -> str:
    """One job per conversation and deadline (a hash: no phone numbers in Redis keys)."""
    return f"{JOB_HANDOFF_RETURN}:{ref_for(key.channel.address(key.user) + key.bot)}:{int(at)}"


def handoff_return_payload(key: ConversationKey, at: float) -> dict[str, Any]:
    return {"channel": key.channel.value, "bot": key.bot, "user": key.user, "at": at}


def handoff_return_from_payload(payload: dict[str, Any]) -> tuple[ConversationKey, float]:
    return ConversationKey(Channel(payload["channel"]), payload["bot"], payload["user"]), float(payload["at"])


def dumps(data: Any) -> bytes:
    """arq's job serializer: JSON, never pickle (a queued job survives code moves)."""
    # Results of failed jobs are exceptions: keep their text.
    return json.dumps(data, default=repr, separators=(",", ":")).encode()


def loads(raw: bytes) -> Any:
    return json.loads(raw)


def recipient_id(key: ConversationKey) -> str:
    """A campaign's member name for a recipient: its Twilio address."""
    return key.channel.address(key.user)


def outcome_for(exc: BotError) -> str:
    """A campaign outcome for a send that did not happen.

    Refusals before any request (status None) are skips; answers from
    Twilio are failures by their code.
    """
    if isinstance(exc, ChannelSendError) and exc.status is None:
        if isinstance(exc, RecipientOptedOutError):
            return "skipped:opted_out"
        if isinstance(exc, RecipientUnreachableError):
            return "skipped:unreachable"
        if isinstance(exc, OutsideWindowError):
            return "skipped:outside_window"
    if isinstance(exc, TemplateError):
        return "failed:template"
    code = getattr(exc, "code", None)
    return f"failed:{code or 'network'}"


@dataclass(frozen=True)
class OutboxJobs:
    """Everything the outbox's jobs use, and nothing more: built once at the composition root.

    The send and broadcast jobs use the sender, campaigns and pacer; the
    re-run-turn job the engine; the apology the reply templates. The web
    app's late replies, the worker and the in-process outbox all run these.

    Example::

        jobs = runtime.outbox_jobs
        await perform_send(jobs, request, last_try=False)
        await perform_turn(jobs, message)
    """

    sender: Sender
    outbox: Outbox
    campaigns: Campaigns
    pacer: Pacer
    content: ContentTemplates
    replies: ReplyTemplates
    engine: Engine
    clock: Clock
    metrics: Metrics
    #: Messages per second of a campaign that set none (``BROADCAST_RATE_PER_SECOND``).
    default_rate: float
    #: The hand-off's timed return (None without the Brain, e.g. a custom turn handler).
    handoff_returns: HandoffReturns | None = None


async def perform_send(jobs: OutboxJobs, request: SendRequest, *, last_try: bool) -> str:
    """A send job's body, shared by both outboxes; returns the outcome.

    Retryable errors propagate (for the caller to try again later) unless
    this is the last try; a campaign records each recipient's outcome once.
    A campaign's send first waits for its slot at the campaign's rate
    (:class:`~bot.outbound.campaigns.Pacer`); :class:`SendDeferred` says to
    run it again later, which is no failure.
    """
    job = JOB_BROADCAST if request.campaign else JOB_SEND
    if request.campaign:
        rate = await jobs.campaigns.rate(request.campaign) or jobs.default_rate
        delay = await jobs.pacer.turn(ref_for(request.idempotency_key), sender=request.key.bot, rate=rate)
        if delay:
            raise SendDeferred(delay)
    try:
        await jobs.sender.send(request)
        outcome = "sent"
    except SendHeld:
        # Scheduled for the release time already; the campaign's outcome comes then.
        jobs.metrics.jobs.labels(job, "held").inc()
        return "held"
    except (ChannelSendError, StoreError) as exc:
        if exc_retryable(exc) and not last_try:
            jobs.metrics.jobs.labels(job, "retry").inc()
            raise
        outcome = outcome_for(exc)
    except TemplateError as exc:
        log.error("send job has a bad template request", extra={"fields": {"error": str(exc)}})
        outcome = outcome_for(exc)
    if request.campaign:
        await jobs.campaigns.record(request.campaign, recipient_id(request.key), outcome)
    jobs.metrics.jobs.labels(job, outcome.split(":", 1)[0]).inc()
    return outcome


def exc_retryable(exc: BaseException) -> bool:
    """Whether a job failing with ``exc`` should run again later."""
    if isinstance(exc, ChannelSendError):
        return exc.retryable
    return isinstance(exc, StoreError)


async def perform_handoff_return(jobs: OutboxJobs, key: ConversationKey, at: float) -> str:
    """A hand-off return job's body: what happened (``returned``, ``held``, ``active`` ...)."""
    if jobs.handoff_returns is None:
        return "none"
    outcome = await jobs.handoff_returns.run(key, at)
    jobs.metrics.jobs.labels(JOB_HANDOFF_RETURN, outcome).inc()
    return outcome


async def perform_turn(jobs: OutboxJobs, message: InboundMessage) -> str:
    """A re-run-turn job's body: ``answered``, ``duplicate`` (nothing to do) or ``failed``."""
    try:
        handled = await jobs.engine.handle(message, deliver=rest_deliverer(jobs))
    except TurnFailedError as exc:
        # The web path answers a crash with an apology; so does the late path.
        if exc.may_reply:
            await _apologise(jobs, message)
        jobs.metrics.jobs.labels(JOB_RUN_TURN, "failed").inc()
        return "failed"
    outcome = "duplicate" if handled.duplicate else "answered"
    jobs.metrics.jobs.labels(JOB_RUN_TURN, outcome).inc()
    return outcome


async def _apologise(jobs: OutboxJobs, message: InboundMessage) -> None:
    try:
        text = jobs.replies.render("error", message.channel.value)
    except Exception:  # a broken template must not hide the apology
        text = "Sorry, something went wrong on our side. Please try again in a moment."
    key = ConversationKey(message.channel, message.bot, message.user)
    request = SendRequest(key=key, body=text, idempotency_key=f"apology:{message.event_id}",
                          last_inbound_at=jobs.clock.timestamp())
    try:
        await jobs.sender.send(request)
    except BotError as exc:
        log.warning("apology not sent", extra={"fields": {"error": str(exc)}})


def rest_deliverer(jobs: OutboxJobs) -> Deliver:
    """The engine ``Deliver`` that sends a turn's replies through the REST sender.

    Replies go out in order, each with the idempotency key
    ``reply:<MessageSid>:<index>`` (a re-run turn sends nothing twice), and
    nothing is left for the webhook's answer (``""``: it serves the empty
    ``<Response/>``; TwiML is the web adapter's business, ``webhooks/twiml.py``).
    A reply that fails with a retryable error goes to the outbox, and the ones after it follow it there, spaced, so
    they keep their order. On WhatsApp a free-form reply that meets a closed
    window falls back to the ``welcome_back`` template when it is registered.
    """

    async def deliver(msg: InboundMessage, result: TurnResult, state: ConversationState) -> str:
        key = ConversationKey(msg.channel, msg.bot, msg.user)
        fallback = _welcome_back(jobs.content, msg, state)
        handed_over = 0  # replies given to the outbox; the later ones follow, spaced
        for index, reply in enumerate(result.replies):
            if not _sendable(reply):
                continue
            request = SendRequest(
                key=key, idempotency_key=f"reply:{msg.event_id}:{index}", body=reply.text,
                media=reply.media, choices=reply.choices, template=reply.template,
                fallback_template=fallback, purpose="reply", compliance=reply.compliance,
                last_inbound_at=state.last_inbound_at,
            )
            if not handed_over:
                try:
                    await jobs.sender.send(request)
                    jobs.metrics.replies.labels(msg.channel.value, "rest").inc()
                    continue
                except SendHeld:
                    # A late answer at night: it goes at the release time; the
                    # replies after it follow it there, in order.
                    handed_over += 1
                    continue
                except ChannelSendError as exc:
                    if not exc.retryable:
                        continue  # the sender logged and counted it; nothing more can help
                except TemplateError as exc:
                    # A reply asking for a template the registry cannot render is a
                    # bug to fix, not a reason to lose the turn's other replies.
                    log.error("reply template refused", extra={"fields": {"sid": msg.event_id,
                                                                           "error": str(exc)}})
                    continue
            await jobs.outbox.submit(request, delay=RETRY_DELAYS[0] + handed_over * REPLY_SPACING)
            handed_over += 1
        return ""  # everything went by REST: the webhook answers the empty <Response/>

    return deliver


def _sendable(reply: Reply) -> bool:
    return bool(reply.text.strip() or reply.media or reply.template or reply.choices)


def _welcome_back(content: ContentTemplates, msg: InboundMessage, state: ConversationState) -> TemplateMessage | None:
    if not profile_of(msg.channel).content_templates or WELCOME_BACK not in content:
        return None
    if content.get(WELCOME_BACK).variables != ("name",):
        return None
    speaking = speaking_kept(state)  # the conversation's language: its variant (docs/languages.md)
    return speaking.template(WELCOME_BACK, {"name": speaking.name(msg.profile_name)})


class InlineOutbox:
    """In-process outbox (development and tests): asyncio tasks, same semantics.

    Nothing survives the process, which is why it is only used without
    Redis. Retryable failures are tried again after ``retry_delays``. Its
    jobs run in this process, so it is given them (:meth:`attach`) once the
    composition root has built them: they include the engine, whose handler
    may itself submit to this outbox.

    Example::

        outbox = InlineOutbox(clock=clock)
        outbox.attach(jobs)        # bot.runtime does this
        await outbox.submit(request)
        await outbox.drain()   # everything submitted (and what it submitted) is done
    """

    def __init__(self, *, clock: Clock, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self._clock = clock
        self._jobs: OutboxJobs | None = None
        self._retry_delays = tuple(retry_delays)
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Set while draining: turn-recovery jobs stop waiting out their delay.
        self._hurry = asyncio.Event()
        # Quiet-hours holds: job id -> (release epoch seconds, request). Released by the
        # runtime's clock (a frozen one in tests and replay: `advance` releases them).
        self._held: dict[str, tuple[float, SendRequest]] = {}
        # Hand-off returns: job id -> (due epoch seconds, conversation); released like holds.
        self._returns: dict[str, tuple[float, ConversationKey]] = {}
        self._held_timer: asyncio.Task[None] | None = None

    def attach(self, jobs: OutboxJobs) -> None:
        """Run ``jobs`` for what is submitted (the composition root calls it once the engine exists).

        The one link of the object graph made after construction, because it
        is a cycle: the jobs run the engine, whose Brain submits to this outbox.
        """
        self._jobs = jobs

    @property
    def jobs(self) -> OutboxJobs:
        if self._jobs is None:
            raise RuntimeError("InlineOutbox has no jobs yet: attach(jobs) first (bot.runtime does)")
        return self._jobs

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        self._spawn(send_job_id(request), self._send(request, delay))

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        self._spawn(turn_job_id(message), self._turn(message, delay))

    async def submit_held(self, request: SendRequest, hold: Hold) -> None:
        self._held[held_job_id(request, hold)] = (hold.release_at.timestamp(), request)
        self._arm_timer()

    async def submit_handoff_return(self, key: ConversationKey, at: float) -> None:
        self._returns[handoff_return_job_id(key, at)] = (at, key)
        self._arm_timer()

    def release_due(self) -> int:
        """Start the held sends and hand-off returns whose time the clock has reached; how many."""
        now = self._clock.timestamp()
        due = [job_id for job_id, (release, _) in self._held.items() if release <= now]
        for job_id in due:
            _, request = self._held.pop(job_id)
            self._spawn(job_id, self._send(request, 0.0))
        returns = [job_id for job_id, (at, _) in self._returns.items() if at <= now]
        for job_id in returns:
            at, key = self._returns.pop(job_id)
            self._spawn(job_id, self._handoff_return(key, at))
        if self._held or self._returns:
            self._arm_timer()
        return len(due) + len(returns)

    @property
    def held(self) -> int:
        """Sends waiting for quiet hours to end."""
        return len(self._held)

    def _arm_timer(self) -> None:
        # Wall-clock wake-up for a live process; a frozen clock is moved on by drain().
        if self._held_timer is not None and not self._held_timer.done():
            self._held_timer.cancel()
        soonest = min(at for at, _ in (*self._held.values(), *self._returns.values()))
        wait = max(soonest - self._clock.timestamp(), 0.0)
        self._held_timer = asyncio.get_running_loop().create_task(self._wake(wait))

    async def _wake(self, wait: float) -> None:
        await asyncio.sleep(min(wait, 3600.0))
        self.release_due()

    def _spawn(self, job_id: str, work: Coroutine[Any, Any, None]) -> None:
        if job_id in self._tasks:
            work.close()  # queued already: at most one per id, like arq
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks[job_id] = task
        task.add_done_callback(lambda done: self._done(job_id, done))

    def _done(self, job_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(job_id) is task:
            del self._tasks[job_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("outbox task failed", exc_info=task.exception(), extra={"fields": {"job": job_id}})

    async def _send(self, request: SendRequest, delay: float) -> None:
        await asyncio.sleep(delay)
        await self._with_retries(lambda last: perform_send(self.jobs, request, last_try=last))

    async def _handoff_return(self, key: ConversationKey, at: float) -> None:
        async def run(_last: bool) -> str:
            return await perform_handoff_return(self.jobs, key, at)

        await self._with_retries(run)

    async def _turn(self, message: InboundMessage, delay: float) -> None:
        # The delay only gives a live turn time to finish; in one process a
        # drain (the replay runner, tests) can check at once: answered turns
        # are no-ops, and a crashed one is run again now.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._hurry.wait(), delay)
        await self._with_retries(lambda last: perform_turn(self.jobs, message))

    async def _with_retries(self, run: Callable[[bool], Awaitable[object]]) -> None:
        waits = [*self._retry_delays, None]
        for wait in waits:
            try:
                while True:
                    try:
                        await run(wait is None)
                        return
                    except SendDeferred as deferred:  # its turn comes later: not a try
                        await asyncio.sleep(deferred.delay)
            except (ChannelSendError, StoreError) as exc:
                if wait is None or not exc_retryable(exc):
                    log.warning("outbox job gave up", extra={"fields": {"error": str(exc)}})
                    return
                await asyncio.sleep(wait)

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every submitted job (and any job they submit) has finished.

        Sends keep their delays (a broadcast's pace); turn-recovery jobs run
        at once; sends held for quiet hours run once the clock reached their
        release time, and otherwise stay held.
        """
        self._hurry.set()
        try:
            self.release_due()
            while self._tasks:
                await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)
                self.release_due()
        finally:
            self._hurry.clear()

    async def close(self) -> None:
        if self._held_timer is not None:
            self._held_timer.cancel()
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)


class ArqOutbox:
    """The production outbox: arq jobs on the bot's Redis, run by ``bot worker``.

    Example::

        outbox = ArqOutbox.from_url("redis://127.0.0.1:6379/0")
        await outbox.submit(request, delay=2.5)
        await outbox.close()
    """

    def __init__(self, redis: ArqRedis, *, timeout: float = 5.0) -> None:
        self.redis = redis
        self.timeout = timeout

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 5.0) -> ArqOutbox:
        """``timeout`` bounds each submit (``REDIS_TIMEOUT_SECONDS``): the webhook waits for it."""
        # Lazy: nothing connects until the first job is submitted. A Sentinel
        # URL gives a pool that follows the master across failovers.
        pool = queue_pool(url, socket_timeout=timeout, socket_connect_timeout=min(timeout, 2.0))
        return cls(ArqRedis(pool, job_serializer=dumps, job_deserializer=loads), timeout=timeout)

    async def submit(self, request: SendRequest, *, delay: float = 0.0) -> None:
        function = JOB_BROADCAST if request.campaign else JOB_SEND
        await self._enqueue(function, request.to_dict(), job_id=send_job_id(request), delay=delay)

    async def submit_held(self, request: SendRequest, hold: Hold) -> None:
        function = JOB_BROADCAST if request.campaign else JOB_SEND
        await enqueue(self.redis, function, request.to_dict(), job_id=held_job_id(request, hold),
                      within=self.timeout, defer_until=hold.release_at)

    async def submit_handoff_return(self, key: ConversationKey, at: float) -> None:
        await enqueue(self.redis, JOB_HANDOFF_RETURN, handoff_return_payload(key, at),
                      job_id=handoff_return_job_id(key, at), within=self.timeout,
                      defer_until=datetime.fromtimestamp(at, UTC))

    async def submit_turn(self, message: InboundMessage, *, delay: float) -> None:
        await self._enqueue(JOB_RUN_TURN, inbound_to_dict(message), job_id=turn_job_id(message), delay=delay)
        log.info("turn recovery queued", extra={"fields": {"sid": message.event_id,
                                                           "user": mask_phone(message.user)}})

    async def _enqueue(self, function: str, payload: dict[str, Any], *, job_id: str, delay: float) -> None:
        # Already queued (or finished recently) is fine: at most one job per id.
        await enqueue(self.redis, function, payload, job_id=job_id, within=self.timeout, defer_by=delay)

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)

"""The composition root: the object graph of one process, built from ``Settings``.

The web app (``webhooks.app.create_app``), the worker (``bot worker``) and
the replay runner all build the same :class:`Runtime`, so a turn runs the
same way wherever it runs. :meth:`Runtime.build` is the one place that wires
the parts: each part gets the narrow parts it uses (typed fields, no lookup
by name), the business file is loaded once and shared by the Brain and the
outbound parts, and the staff notifier is built here and handed to the Brain.
What may be injected instead of built from the settings (a store, a frozen
clock, a scripted model ...) is listed once, in :class:`RuntimeParts`;
``create_app`` passes its keywords straight through.

Example::

    runtime = build_runtime(settings)
    runtime = build_runtime(settings, store=MemoryStore(), clock=FrozenClock(start))
    await runtime.aclose()
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Self, TypedDict, Unpack

from bot.appointments import Appointment, AppointmentBook
from bot.brain import Brain, build_handler
from bot.business import Business, load_business
from bot.clock import Clock, SystemClock
from bot.compliance import Compliance, RevocationMatcher
from bot.compliance.ledger import AddressHasher, ConsentLedger, build_consent_ledger
from bot.confirmations.after_visit import AfterVisit, PatientMessaging
from bot.confirmations.figures import status_counter
from bot.confirmations.recall import Recall
from bot.contacts.flow import ContactVerification
from bot.contacts.wiring import build_contact_verification, verified_consent
from bot.engine import Deliver, Engine, TurnHandler
from bot.errors import ConfigError
from bot.handoff import outbox_staff_notifier
from bot.handoff_return import HandoffReturns
from bot.languages.recipients import ONE_LANGUAGE, RecipientLanguages
from bot.mail.wiring import StaffMailParts, build_staff_mail
from bot.memo import fingerprint, memo
from bot.observability import Metrics
from bot.outbound.outbox import ArqOutbox, InlineOutbox, Outbox, OutboxJobs, rest_deliverer
from bot.outbound.service import Outbound, build_outbound, build_outbox
from bot.settings import Settings
from bot.storage import ConversationStore, MemoryStore, RedisStore
from bot.storage.stores import Stores
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.runtime")


#: Told of each change of the appointment book (:attr:`bot.appointments.AppointmentBook.observers`).
BookObserver = Callable[[str, Appointment, datetime], Awaitable[None]]


class RuntimeParts(TypedDict, total=False):
    """The parts of a :class:`Runtime` that may be injected; by default each is built from ``Settings``.

    The one list of them: :meth:`Runtime.build`, :func:`build_runtime` and
    ``webhooks.app.create_app`` all take these keywords.

    Example::

        parts: RuntimeParts = {"store": MemoryStore(), "clock": FrozenClock(start)}
        app = create_app(settings, **parts)
    """

    #: Redis with ``REDIS_URL``, else the in-memory store.
    store: ConversationStore | None
    #: The system clock; replay and tests freeze it.
    clock: Clock | None
    #: The Brain (:func:`bot.brain.build_handler`); tests answer with their own.
    handler: TurnHandler | None
    #: A LangChain chat model for the Brain (replay's scripted fake); None: from ``LLM_MODEL``.
    chat_model: Any
    #: A ``twilio.rest.Client``; None: opened from the settings by :meth:`Runtime.open`.
    twilio: Any
    #: arq with ``REDIS_URL``, in-process tasks without.
    outbox: Outbox | None
    #: The consent ledger beside the store (Redis or memory); replay in a shared Redis keeps its own.
    consent_ledger: ConsentLedger | None


@dataclass
class Runtime:
    """Everything one process needs to run turns and send messages.

    Build it with :meth:`build` (or :func:`build_runtime`); a subclass
    (the web app's ``Services``) is built the same way and adds its parts.
    """

    settings: Settings
    store: ConversationStore
    clock: Clock
    metrics: Metrics
    templates: ReplyTemplates
    handler: TurnHandler
    engine: Engine
    # Sender, outbox, content templates, delivery tracking (docs/outbound.md).
    outbound: Outbound
    # What the outbox's jobs run (sends, re-run turns): the worker's and the in-process outbox's.
    outbox_jobs: OutboxJobs
    # The engine ``Deliver`` for turns answered by REST (late replies, WhatsApp buttons);
    # a test sets None to keep every answer in TwiML.
    rest_deliver: Deliver | None
    # The business file, loaded once (None only for a custom handler without one).
    business: Business | None = None
    # The official Twilio REST client (async); opened by :meth:`open`.
    twilio: Any = None
    # Scheduled jobs by the name transcripts use (``run: reminders``) and the worker's cron.
    jobs: dict[str, Callable[[], Awaitable[Any]]] = field(default_factory=dict)
    # Every opt-in and opt-out, append-only (bot/compliance/ledger.py).
    consent_ledger: ConsentLedger | None = None
    # Staff email (docs/staff-email.md); None unless STAFF_EMAIL, SENDGRID_API_KEY and EMAIL_FROM are set.
    staff_mail: StaffMailParts | None = None
    # The observers this runtime gave the Brain's appointment book; removed on close, since an
    # injected Brain outlives the runtime (replay shares one across conversations).
    book_observers: list[BookObserver] = field(default_factory=list)
    # Reminder contacts verified through Twilio Verify (bot/contacts); None unless TWILIO_VERIFY_SERVICE_SID is set.
    contacts: ContactVerification | None = None
    # After-visit messages and recall (docs/confirmations.md); None without a business file.
    after_visit: AfterVisit | None = None
    recall: Recall | None = None

    def require_outbound(self) -> Outbound:
        """The outbound parts (always built; kept for callers written before they were a plain field)."""
        return self.outbound

    @classmethod
    def build(cls, settings: Settings, **parts: Unpack[RuntimeParts]) -> Self:
        """Build the object graph for ``settings``, with any of :class:`RuntimeParts` injected.

        Unknown keywords raise ``TypeError``, as they would with named parameters.

        Example::

            runtime = Runtime.build(settings, store=MemoryStore(), clock=FrozenClock(start))
        """
        unknown = parts.keys() - RuntimeParts.__optional_keys__
        if unknown:
            raise TypeError(f"{cls.__name__}.build() got unexpected keywords: {', '.join(sorted(unknown))}")
        store = parts.get("store") or build_store(settings)
        clock = parts.get("clock") or SystemClock()
        metrics = Metrics()
        prompts = Path(settings.prompts_dir)
        templates = memo(("replies", fingerprint(prompts)), lambda: ReplyTemplates(prompts))
        injected = parts.get("handler")
        # Loaded once: the Brain and the outbound parts (reminders) share it.
        business = load_business_file(settings, required=injected is None)
        stores = Stores.beside(store)
        # First: the Brain's staff notices and hand-off returns go through it.
        outbox = parts.get("outbox") or build_outbox(settings, clock)
        ledger = parts.get("consent_ledger") or build_consent_ledger(store)
        hash_key = settings.consent_hash_key
        hasher = AddressHasher(hash_key.get_secret_value() if hash_key else None)
        # The Brain's appointment book; its figures count every status change made through it.
        counter = status_counter(metrics.appointments)
        book = (
            AppointmentBook(stores.appointments, business.tz, resources=business,
                            observers=(counter,) if injected is None else ())
            if business else None
        )
        arq = outbox.redis if isinstance(outbox, ArqOutbox) else None
        staff_mail = (
            build_staff_mail(settings, store=store, ledger=stores.ledger, book=book, business=business,
                             clock=clock, metrics=metrics, arq_redis=arq)
            if business is not None else None
        )
        contacts = build_contact_verification(
            # The client is opened later (Runtime.open): read when a code is sent.
            settings, store=stores.ledger, twilio=lambda: runtime.twilio,
            record_consent=verified_consent(ledger, hasher) if ledger is not None else None,
        )
        if injected is not None:
            handler: TurnHandler = injected
        else:
            assert business is not None  # required above
            handler = build_handler(settings, templates=templates, clock=clock, store=store,
                                    chat_model=parts.get("chat_model"), business=business,
                                    # Hand-off notices to STAFF_NUMBER go through the outbox.
                                    notify_staff=outbox_staff_notifier(settings, outbox, business),
                                    book=book, staff_mail=staff_mail, contacts=contacts,
                                    schedule_return=outbox.submit_handoff_return)
        brain = handler if isinstance(handler, Brain) else None
        # Hear of every opt-out: a reminder contact's own STOP removes it from every patient it
        # served; staff email and the day's digest list it.
        opt_out_observers = [] if brain is None else [
            *([contacts.contacts.forget] if contacts is not None else []),
            *([staff_mail.opted_out] if staff_mail is not None else []),
        ]
        consent_dir = Path(settings.intents_dir) / "consent"
        compliance = Compliance(
            templates,
            keyword_replies=settings.sms_keyword_replies,
            context=getattr(handler, "template_context", {}),
            matcher=memo(("consent", fingerprint(consent_dir)), lambda: RevocationMatcher.from_dir(consent_dir)),
            ledger=ledger,
            hasher=hasher,
            appointments=brain.book if brain is not None else None,
            tz=brain.business.tz if brain is not None else None,
            # Staff hear of an opt-out by someone with an appointment the same way as of a hand-off.
            notify_staff=brain.notify_staff if brain is not None else None,
            clock=clock,
            languages=brain.languages if brain is not None else None,
            service_labels=brain.service_labels if brain is not None else None,
            opt_out_observers=opt_out_observers,
        )
        # An opt-out Twilio reports at send time (21610) is recorded and told like any other.
        # A reminder, a follow-up, a recall invitation speak the language of the patient's conversation.
        recipients = (RecipientLanguages(store, brain.languages, brain.service_labels) if brain is not None
                      else ONE_LANGUAGE)
        outbound = build_outbound(settings, stores=stores, clock=clock, metrics=metrics, business=business,
                                  outbox=outbox, twilio=parts.get("twilio"), on_opt_out=compliance.platform_opt_out,
                                  recipients=recipients)
        engine = Engine(
            store=store,
            clock=clock,
            compliance=compliance,
            handler=handler,
            settings=settings,
            metrics=metrics,
        )
        returns = None
        if brain is not None:
            # The hand-off's return at its idle deadline: a timed outbox job.
            returns = HandoffReturns(engine=engine, clock=clock, handoff=brain.handoff, outbox=outbox,
                                     quiet=outbound.sender.quiet)
        outbox_jobs = OutboxJobs(
            sender=outbound.sender, outbox=outbox, campaigns=outbound.campaigns, pacer=outbound.pacer,
            content=outbound.templates, replies=templates, engine=engine, clock=clock, metrics=metrics,
            default_rate=settings.broadcast_rate_per_second, handoff_returns=returns,
        )
        if isinstance(outbox, InlineOutbox):
            # The one cycle of the graph, closed here on purpose: in-process jobs run this engine,
            # whose Brain submits to this outbox (staff notices, hand-off returns), so the outbox
            # exists first and gets its jobs now. arq needs none: the worker builds its own runtime.
            outbox.attach(outbox_jobs)
        runtime = cls(
            settings=settings,
            store=store,
            clock=clock,
            metrics=metrics,
            templates=templates,
            handler=handler,
            engine=engine,
            outbound=outbound,
            outbox_jobs=outbox_jobs,
            rest_deliver=rest_deliverer(outbox_jobs),
            business=business,
            twilio=parts.get("twilio"),
            consent_ledger=ledger,
            staff_mail=staff_mail,
            contacts=contacts,
        )
        runtime.jobs["reminders"] = outbound.reminders.run
        if business is not None:
            build_confirmations(runtime, business, compliance.hasher)
        if isinstance(outbox, InlineOutbox):
            # In one process (replay, `bot chat`) due timed jobs run at the next settle; `run: handoff_returns`
            # runs those due now (with a worker, arq runs them at their time).
            runtime.jobs["handoff_returns"] = _release_due(outbox)
        if brain is not None and injected is not None:
            # A Brain shared by several runtimes (replay) outlives this one: its book counts for this
            # runtime's figures until aclose() lets go (a Brain built here got the counter at construction).
            runtime.book_observers.append(counter)
            brain.book.observers.extend(runtime.book_observers)
        return runtime

    async def open(self) -> None:
        """Open network clients; called by the app's lifespan or the worker."""
        if isinstance(self.store, MemoryStore):
            log.warning(
                "REDIS_URL is not set: using the in-memory store (one process, development only; "
                "nothing survives a restart)"
            )
        if self.settings.twilio_skip_signature_check:
            log.warning("!!! TWILIO_SKIP_SIGNATURE_CHECK is on: webhooks are NOT authenticated. Development only. !!!")
        if self.twilio is None:
            self.twilio = open_twilio(self.settings)
        self.outbound.open(self.twilio)

    async def aclose(self) -> None:
        if isinstance(self.handler, Brain):
            for observer in self.book_observers:
                self.handler.book.observers.remove(observer)
        self.book_observers.clear()
        if self.staff_mail is not None:
            await self.staff_mail.close()
        await self.outbound.aclose()
        session = getattr(getattr(self.twilio, "http_client", None), "session", None)
        if session is not None:
            await session.close()
        self.twilio = None
        await self.store.close()


def build_confirmations(runtime: Runtime, business: Business, hasher: AddressHasher) -> None:
    """The after-visit and recall jobs (docs/confirmations.md), on the reminders' appointment book."""
    outbound = runtime.outbound
    parts = PatientMessaging(book=outbound.reminders.book, outbox=outbound.outbox,
                             suppressions=outbound.sender.suppressions, clock=runtime.clock, business=business,
                             templates=outbound.templates, metrics=runtime.metrics,
                             recipients=outbound.reminders.recipients)
    runtime.after_visit = AfterVisit(parts)
    runtime.recall = Recall(parts, ledger=runtime.consent_ledger, hasher=hasher)
    runtime.jobs["after_visit"] = runtime.after_visit.run
    runtime.jobs["recall"] = runtime.recall.run


def _release_due(outbox: InlineOutbox) -> Callable[[], Awaitable[int]]:
    async def release() -> int:
        return outbox.release_due()

    return release


def load_business_file(settings: Settings, *, required: bool) -> Business | None:
    """``<INTENTS_DIR>/business.yaml``, once per process.

    The Brain needs it (``required``: a missing or invalid file stops
    start-up); a custom turn handler may run without one (None then).
    """
    path = Path(settings.intents_dir) / "business.yaml"
    try:
        # Memoised by the file's fingerprint: parsing the YAML took ~65 ms, once per
        # app (a replay builds one per conversation); the model is frozen.
        return memo(("business", fingerprint(path)), lambda: load_business(path))
    except ConfigError:
        if required:
            raise
        return None


def build_store(settings: Settings) -> ConversationStore:
    """Redis when ``REDIS_URL`` is set, else the in-memory store (dev only)."""
    if settings.redis_url:
        return RedisStore.from_url(settings.redis_url, timeout=settings.redis_timeout_seconds)
    return MemoryStore()


def open_twilio(settings: Settings) -> Any:
    """The official SDK's client on its async HTTP client.

    ``TWILIO_API_BASE_URL`` points the Messages API elsewhere (the local simulator).
    """
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    client = Client(
        settings.twilio_account_sid,
        settings.twilio_auth_token.get_secret_value(),
        http_client=AsyncTwilioHttpClient(timeout=10),
    )
    if settings.twilio_api_base_url:
        client.api.base_url = settings.twilio_api_base_url
        # Verify too (the local simulator serves its v2 paths on the same host).
        client.verify.base_url = settings.twilio_api_base_url
    return client


def build_runtime(settings: Settings, **parts: Unpack[RuntimeParts]) -> Runtime:
    """Build a :class:`Runtime` for ``settings``; see :meth:`Runtime.build`.

    Example::

        runtime = build_runtime(settings, handler=MyHandler())
    """
    return Runtime.build(settings, **parts)

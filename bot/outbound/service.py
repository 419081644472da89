"""The outbound parts of one process, built once by the composition root (:mod:`bot.runtime`).

:func:`build_outbound` takes the narrow parts it needs (settings, store,
clock, metrics, the one loaded business), not the runtime; ``build_runtime``
keeps the result as ``runtime.outbound``. The web app, the worker and the
replay runner all reach the sender, the outbox and the rest through it.

Example::

    outbound = build_outbound(settings, stores=stores, clock=clock, metrics=metrics, business=business)
    await outbound.sender.send(request)
    await outbound.outbox.submit(request, delay=10)
    await outbound.reminders.run()
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.appointments import AppointmentBook
from bot.business import Business
from bot.clock import Clock
from bot.contacts.store import ContactBook
from bot.languages.recipients import ONE_LANGUAGE, RecipientLanguages
from bot.memo import fingerprint, memo
from bot.observability import Metrics
from bot.outbound.campaigns import Campaigns, Pacer
from bot.outbound.held import QuietGate
from bot.outbound.models import SendRequest
from bot.outbound.outbox import WELCOME_BACK, ArqOutbox, InlineOutbox, Outbox
from bot.outbound.reminders import Reminders
from bot.outbound.sender import Sender
from bot.outbound.status import DeliveryTracker
from bot.outbound.suppression import OptOutReport
from bot.outbound.templates import ContentTemplates
from bot.quiet_hours import Hold, QuietHours, QuietHoursPolicy, load_state_rules
from bot.settings import Settings
from bot.storage.stores import Stores

log = logging.getLogger("bot.outbound")

TEMPLATES_FILE = "templates.yaml"


@dataclass
class Outbound:
    """Sender, outbox, template registry, campaigns, delivery tracking, reminders."""

    templates: ContentTemplates
    sender: Sender
    outbox: Outbox
    campaigns: Campaigns
    tracker: DeliveryTracker
    reminders: Reminders
    pacer: Pacer

    def open(self, twilio: Any) -> None:
        """Give the sender the process's Twilio client (opened by ``Runtime.open``)."""
        self.sender.client = twilio

    async def aclose(self) -> None:
        await self.outbox.close()
        self.sender.client = None


def load_content_templates(settings: Settings) -> ContentTemplates:
    """``<INTENTS_DIR>/templates.yaml``; an invalid file stops start-up, a missing one means none."""
    path = Path(settings.intents_dir) / TEMPLATES_FILE
    if not path.exists():
        log.warning("no content templates (%s missing): WhatsApp can only answer within 24 h", path)
        return ContentTemplates()
    return memo(("content", fingerprint(path)), lambda: ContentTemplates.load(path))


def build_outbox(settings: Settings, clock: Clock) -> Outbox:
    """arq on ``REDIS_URL`` when set, else in-process tasks (development, replay, tests).

    Built before the rest of the graph: the Brain's staff notices and hand-off
    returns go through it. An in-process outbox is given its jobs
    (:meth:`~bot.outbound.outbox.InlineOutbox.attach`) once the engine exists.
    """
    if settings.queue_url:
        return ArqOutbox.from_url(settings.queue_url, timeout=settings.redis_timeout_seconds)
    return InlineOutbox(clock=clock)


def build_outbound(
    settings: Settings,
    *,
    stores: Stores,
    clock: Clock,
    metrics: Metrics,
    business: Business | None,
    outbox: Outbox | None = None,
    twilio: Any = None,
    on_opt_out: OptOutReport | None = None,
    recipients: RecipientLanguages = ONE_LANGUAGE,
) -> Outbound:
    """Wire the outbound parts from the narrow parts they use.

    ``outbox`` is the process's (:func:`build_outbox` when not given).
    ``twilio`` is an already open SDK client, else :meth:`Outbound.open`
    gives it later. ``on_opt_out`` hears of each opt-out Twilio reports
    (21610): the composition root passes compliance's. ``business`` is None
    only for a process without a business file. ``recipients`` tells
    which language a reminder speaks (the Brain's languages).
    """
    templates = load_content_templates(settings)
    # Sent in place of a reply when WhatsApp's window closed: in every language (docs/languages.md).
    templates.check_languages([WELCOME_BACK], recipients.codes)
    if outbox is None:
        outbox = build_outbox(settings, clock)
    book = (AppointmentBook(stores.appointments, business.tz, resources=business)
            if business else AppointmentBook(stores.appointments))
    quiet = quiet_gate(stores, clock, metrics, business, book, outbox)
    sender = Sender(settings=settings, store=stores.conversations, ledger_store=stores.ledger, clock=clock,
                    metrics=metrics, templates=templates, twilio=twilio, quiet=quiet, on_opt_out=on_opt_out)
    campaigns = Campaigns(stores.ledger)
    tracker = DeliveryTracker(store=stores.ledger, ledger=sender.ledger, suppressions=sender.suppressions,
                              campaigns=campaigns, outbox=outbox, metrics=metrics)
    lead_set = "reminder_lead_hours" in settings.model_fields_set
    reminders = Reminders(
        book=book,
        outbox=outbox, suppressions=sender.suppressions, store=stores.jobs, clock=clock,
        lead=timedelta(hours=settings.reminder_lead_hours), templates=templates, metrics=metrics,
        business=business, quiet=quiet.policy,
        # Verified reminder contacts (docs/staff-email.md) exist only with Verify configured.
        contacts=ContactBook(stores.ledger) if settings.twilio_verify_service_sid else None,
        # business.yaml's schedule, unless REMINDER_LEAD_HOURS is set: then one reminder at that lead.
        schedule=(business.reminders or ()) if business is not None and not lead_set else (),
        recipients=recipients,
    )
    return Outbound(templates=templates, sender=sender, outbox=outbox, campaigns=campaigns, tracker=tracker,
                    reminders=reminders, pacer=Pacer(stores.jobs))


def quiet_gate(stores: Stores, clock: Clock, metrics: Metrics, business: Business | None, book: AppointmentBook,
               outbox: Outbox) -> QuietGate:
    """The sender's quiet-hours gate, sending held messages through ``outbox`` at their release time."""
    config = business.quiet_hours if business is not None else QuietHours()
    tz = business.tz if business is not None else ZoneInfo("UTC")
    policy = QuietHoursPolicy(config, load_state_rules(), tz)
    sink = getattr(outbox, "submit_held", None)
    if sink is None:  # an outbox without holds (a test's): a plain delayed submit

        async def submit_later(request: SendRequest, hold: Hold) -> None:
            await outbox.submit(request, delay=max(hold.release_at.timestamp() - clock.timestamp(), 0.0))

        sink = submit_later
    return QuietGate(policy=policy, store=stores.conversations, records=stores.jobs, book=book, clock=clock,
                     metrics=metrics, sink=sink)

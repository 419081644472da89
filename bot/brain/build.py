"""Building the default Brain from ``Settings``: its NLU, model, flows, FAQ, safety rules and languages.

:func:`build_handler` is what the composition root (:mod:`bot.runtime`) calls;
every part the Brain shares with the rest of the process (the business, the
appointment book, the staff notifier and mail, reminder contacts, the
hand-off's return scheduler) is passed in. Each other language of the
business gets the same Brain speaking it (:func:`_translation`).

Example::

    brain = build_handler(settings, templates=templates, clock=clock, store=store, business=business)
    brain.translations.keys()   # the business's other languages
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.appointments import AppointmentBook
from bot.brain.dispatch import Brain
from bot.business import Business, load_business
from bot.clock import Clock
from bot.confirmations.answers import ReminderAnswers
from bot.confirmations.replies import load_reminder_replies
from bot.contacts.flow import ContactVerification
from bot.faq import FaqBook
from bot.flows.appointments import BOOK, CANCEL, RESCHEDULE
from bot.flows.base import Flow
from bot.flows.table import TableFlow
from bot.handoff import Handoff, ReturnScheduler, StaffNotifier
from bot.languages.choose import Languages
from bot.languages.detect import LanguageDetector, distinct_words
from bot.languages.nlu import language_nlu
from bot.languages.openers import load_openers
from bot.mail.wiring import StaffMailParts
from bot.memo import memo
from bot.nlu.classifier import IntentClassifier
from bot.nlu.intents import IntentCatalog, load_intents
from bot.nlu.model import ModelStep, build_chat_model
from bot.nlu.understand import NLU
from bot.safety import load_safety
from bot.settings import Settings
from bot.storage.base import ConversationStore
from bot.storage.stores import Stores
from bot.templates import ReplyTemplates


def build_handler(
    settings: Settings,
    *,
    templates: ReplyTemplates,
    clock: Clock,
    store: ConversationStore,
    chat_model: Any = None,
    business: Business | None = None,
    notify_staff: StaffNotifier | None = None,
    book: AppointmentBook | None = None,
    staff_mail: StaffMailParts | None = None,
    contacts: ContactVerification | None = None,
    schedule_return: ReturnScheduler | None = None,
) -> Brain:
    """The default :class:`Brain` for ``settings``: the demo business unless edited.

    ``chat_model`` (a LangChain chat model) overrides ``LLM_MODEL``;
    ``business`` is the loaded ``business.yaml`` (loaded here when not given);
    ``notify_staff`` tells staff of a hand-off, ``staff_mail`` emails them (and
    hears of every booking change), ``contacts`` verifies reminder contacts,
    ``schedule_return`` schedules a hand-off's return at its idle deadline (the
    outbox's) and ``book`` is the appointment book (built here when not given);
    :mod:`bot.runtime` builds them. Every
    intent of ``intents.yaml`` must have a handler (a start-up error names
    one that has none).
    """
    intents_dir = Path(settings.intents_dir)
    # The composition root (bot.runtime) loads the business once and passes it in.
    business = business or load_business(intents_dir / "business.yaml")
    catalog = load_intents(intents_dir / "intents.yaml")
    # Training takes seconds: once per distinct catalog per process (bot/memo.py).
    classifier = memo(("classifier", repr(catalog)), lambda: IntentClassifier.train(catalog))
    nlu = NLU(catalog, business, clock=clock, classifier=classifier)
    model = chat_model if chat_model is not None else build_chat_model(settings)
    step = ModelStep(model, templates, business, timeout=settings.llm_timeout_seconds) if model else None
    handoff = Handoff(settings, templates, {"business": business}, notify_staff=notify_staff, staff_mail=staff_mail,
                      schedule_return=schedule_return)
    # The appointment store beside the conversation store (same backend).
    book = book or AppointmentBook(Stores.beside(store).appointments, business.tz, resources=business)
    if staff_mail is not None:
        # The staff digest's bookings and changes. Added here, not at construction, because the
        # two need each other: the staff mail reads this book for the digest.
        book.observers.append(staff_mail.appointment_changed)
    # Every flow is a table (bot/flows/); the one interpreter runs them all.
    flows: dict[str, Flow] = {
        flow.name: flow for flow in (TableFlow(t) for t in (BOOK, RESCHEDULE, CANCEL, handoff.table))
    }
    faq = memo(("faq", repr(business), repr(catalog)), lambda: FaqBook.build(business, catalog, templates))
    safety = load_safety(intents_dir / "safety.yaml")
    brain = Brain(
        settings=settings,
        nlu=nlu,
        business=business,
        templates=templates,
        book=book,
        flows=flows,
        handoff=handoff,
        model=step,
        faq=faq,
        safety=safety,
        contacts=contacts,
    )
    brain.check_intents(catalog.names, catalog.source or intents_dir / "intents.yaml")
    replies_file = intents_dir / "reminder_replies.yaml"
    if replies_file.exists():
        # Keyed on every language's words (intents/<code>/reminder_replies.yaml too): an edit to one reloads.
        texts = [f.read_text() for f in (replies_file, *sorted(intents_dir.glob(f"*/{replies_file.name}")))]
        replies = memo(("reminder_replies", *texts), lambda: load_reminder_replies(replies_file))
        brain.set_reminder_answers(ReminderAnswers(replies=replies, flows=flows))
    for code in business.languages[1:]:
        # The same brain in another language: its words, examples, FAQ and replies; the same
        # appointments, flows, hand-off, safety rules and model (docs/languages.md).
        brain.translations[code] = _translation(brain, code, intents_dir, clock, catalog.names)
    if brain.translations:
        # Only another language's own words make a message in the default language worth detecting.
        own = _texts(nlu.catalog, business)
        theirs = [text for other in brain.translations.values() for text in _texts(other.nlu.catalog, other.business)]
        detector = LanguageDetector(business.languages, markers=distinct_words(theirs, own))
        brain.languages = Languages(business.languages, detector=detector, by_number=business.language_numbers,
                                    openers=load_openers(intents_dir, business.languages[1:]))
    return brain


def _texts(catalog: IntentCatalog, business: Business) -> list[str]:
    """What a language's data says: intent examples, spellings, FAQ questions, service names."""
    spellings = [word for pair in catalog.spellings for word in pair]
    faq = [q for entry in business.faq.values() for q in entry.questions]
    names = [name for service in business.services.values() for name in service.names]
    return [*(e for d in catalog for e in d.examples), *spellings, *faq, *names]


def _translation(brain: Brain, code: str, intents_dir: Path, clock: Clock, names: tuple[str, ...]) -> Brain:
    """``brain`` speaking ``code``: ``intents/<code>/``, ``prompts/replies/<code>/``.

    A missing translation (an intent, a service, an FAQ entry, a reply) is a start-up error naming it.
    """
    nlu = language_nlu(intents_dir, code, clock=clock, names=names)
    business, catalog = nlu.business, nlu.catalog
    brain.check_intents(catalog.names, catalog.source or intents_dir / code / "intents.yaml")
    templates = brain.templates.in_language(code)
    templates.check_languages([code])
    faq = memo(("faq", repr(business), repr(catalog)), lambda: FaqBook.build(business, catalog, templates))
    translated = Brain(
        settings=brain.settings, nlu=nlu, business=business, templates=templates, book=brain.book,
        flows=brain.flows, handoff=brain.handoff, model=brain.model, faq=faq, safety=brain.safety,
        contacts=brain.contacts,
    )
    if brain.reminder_answers is not None:
        # The reminder's buttons and answers work in every language (the answers' words are the file's).
        translated.set_reminder_answers(brain.reminder_answers)
    return translated

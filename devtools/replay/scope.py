"""Sharing one bot between replayed conversations.

Building the Brain trains the intent classifier, which takes far longer than
a conversation. The runner builds it once, with a clock, a store and a model
that resolve to the *current conversation's* through a context variable; each
conversation still gets its own app, store, clock, Twilio API and jobs. Tasks
copy context variables, so a turn the app finishes in the background still
sees its own conversation.

Example::

    token = SCOPE.set(Scope(clock=clock, store=store, script=None))
    ScopedClock().now()    # the conversation's clock
    SCOPE.reset(token)
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from bot.clock import Clock
from bot.contacts.flow import ContactVerification
from bot.handoff import ReturnScheduler, StaffNotifier
from bot.mail.wiring import StaffMailParts
from bot.storage import AppointmentStore, ConversationStore, JobStore, LedgerStore, Stores
from bot.storage.base import ConversationKey
from devtools.replay.errors import ReplayError
from devtools.replay.scripted_model import ModelScript, ScriptedChatModel


@dataclass(slots=True)
class Scope:
    clock: Clock
    store: ConversationStore
    script: ModelScript | None
    logs: list[logging.LogRecord] = field(default_factory=list)
    # The conversation's own app tells staff through its own outbox, emails
    # them with its own staff mail and verifies contacts with its own Verify.
    notify_staff: StaffNotifier | None = None
    staff_mail: StaffMailParts | None = None
    contacts: ContactVerification | None = None
    # ...and schedules the hand-off's return on it.
    schedule_return: ReturnScheduler | None = None


SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar("bot_replay_scope", default=None)


class ScopedClock:
    """The current conversation's clock (the system clock outside any)."""

    def now(self) -> datetime:
        scope = SCOPE.get()
        return scope.clock.now() if scope is not None else datetime.now(UTC)

    def timestamp(self) -> float:
        return self.now().timestamp()


class ScopedStore:
    """The current conversation's store."""

    def __getattr__(self, name: str) -> Any:
        scope = SCOPE.get()
        if scope is None:
            raise ReplayError(f"the shared bot used its store ({name}) outside a replayed conversation")
        return getattr(scope.store, name)


class ScopedSibling:
    """One of the current conversation's other stores (``appointments``, ``ledger``, ``jobs``)."""

    def __init__(self, part: str) -> None:
        self._part = part

    def __getattr__(self, name: str) -> Any:
        scope = SCOPE.get()
        if scope is None:
            raise ReplayError(f"the shared bot used its {self._part} store outside a replayed conversation")
        return getattr(getattr(Stores.beside(scope.store), self._part), name)


def scoped_store() -> ConversationStore:
    """A store that is the current conversation's, with siblings that are too."""
    store = cast(ConversationStore, ScopedStore())
    Stores.register(store, Stores(
        store, cast(AppointmentStore, ScopedSibling("appointments")),
        cast(LedgerStore, ScopedSibling("ledger")), cast(JobStore, ScopedSibling("jobs"))))
    return store


class ScopedChatModel(ScriptedChatModel):
    """The current conversation's model script."""

    def active_script(self) -> ModelScript:
        scope = SCOPE.get()
        if scope is None or scope.script is None:
            raise ReplayError("the shared bot called its model outside a conversation with llm:")
        return scope.script


class ScopedStaffNotifier:
    """Tells staff through the current conversation's outbox (the shared bot has none of its own)."""

    async def __call__(self, key: ConversationKey, notice: str, message_sid: str) -> None:
        scope = SCOPE.get()
        if scope is None or scope.notify_staff is None:
            raise ReplayError("the shared bot notified staff outside a replayed conversation")
        await scope.notify_staff(key, notice, message_sid)


class ScopedStaffMail:
    """The current conversation's staff email (nothing when its app has none)."""

    async def handoff(self, key: ConversationKey, **event: Any) -> None:
        scope = SCOPE.get()
        if scope is not None and scope.staff_mail is not None:
            await scope.staff_mail.handoff(key, **event)

    async def appointment_changed(self, change: str, appt: Any, at: datetime) -> None:
        scope = SCOPE.get()
        if scope is not None and scope.staff_mail is not None:
            await scope.staff_mail.appointment_changed(change, appt, at)


def scoped_staff_mail() -> StaffMailParts:
    """Staff email that is the current conversation's, for the shared bot."""
    return cast(StaffMailParts, ScopedStaffMail())


class ScopedContacts:
    """The current conversation's reminder-contact verification (none: the message is not for it)."""

    async def handle(self, key: ConversationKey, text: str, now: datetime, data: MutableMapping[str, Any]) -> Any:
        scope = SCOPE.get()
        if scope is None or scope.contacts is None:
            return None
        return await scope.contacts.handle(key, text, now, data)


def scoped_contacts() -> ContactVerification:
    """Reminder-contact verification that is the current conversation's, for the shared bot."""
    return cast(ContactVerification, ScopedContacts())


class ScopedReturnScheduler:
    """Schedules a hand-off's return on the current conversation's outbox."""

    async def __call__(self, key: ConversationKey, at: float) -> None:
        scope = SCOPE.get()
        if scope is None or scope.schedule_return is None:
            raise ReplayError("the shared bot scheduled a hand-off return outside a replayed conversation")
        await scope.schedule_return(key, at)


class ScopeLogs(logging.Handler):
    """Keeps the app's error logs with the conversation that produced them."""

    def emit(self, record: logging.LogRecord) -> None:
        scope = SCOPE.get()
        if scope is not None and len(scope.logs) < 50:
            scope.logs.append(record)

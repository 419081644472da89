"""Flows as tables, and the one interpreter that runs them all.

A flow is data that reads top to bottom: the slots it needs, in order, and
what happens at the confirmation. For each slot a row says

- ``prompt``: the reply template that asks for it,
- ``read``: how a message's words become a value (every message is read for
  every slot of the flow, at any step, so a later message fills or corrects
  any of them),
- ``offer``: what is offered with the question (numbered on SMS, buttons on
  WhatsApp), or a value filled without asking (the only appointment),
- ``check``: how the value is validated, and what is offered when it is not.

Then :class:`Confirm` names the question and the transitions: ``yes`` runs
the action, ``no`` either asks again for some slots (change) or leaves
(keep), and "never mind" cancels. :class:`TableFlow` runs any table; a new
business flow (a salon booking a stylist) is a new table, not new code paths.

Example (the booking table, from :mod:`bot.flows.appointments`)::

    BOOK = FlowTable(
        name="book",
        slots=(
            Slot("service", prompt="ask_service", read=read_service, offer=offer_services),
            Slot("date", prompt="ask_date", read=read_date, check=check_date),
            Slot("time", prompt="ask_time", read=read_time, offer=offer_times, check=check_time),
        ),
        confirm=Confirm("confirm_booking", yes=book_it, no=Change("date", "time", ask="ask_change")),
    )
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from typing import Any

from bot.appointments import SlotTakenError
from bot.flows.base import NO, YES, Turn
from bot.flows.options import Offered
from bot.messages import Reply
from bot.nlu.slots import Slots, extract_slots

#: What one message says for a slot: the slot values to set (``{}``: nothing).
Reader = Callable[[Turn, Slots], Mapping[str, Any]]
#: Template values for the question (``service``, ``day`` ...).
Values = Callable[[Turn], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Offer:
    """What is offered with a question, or a value that needs no question."""

    offered: Sequence[Offered] = ()
    values: Mapping[str, Any] = field(default_factory=dict)
    # Filled without asking (the only upcoming appointment): the slot values.
    fill: Mapping[str, Any] | None = None
    # Ask with another template instead (a fully booked day).
    template: str | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """A value that does not hold: which slots to forget and what to say and offer."""

    template: str
    forget: tuple[str, ...]
    values: Mapping[str, Any] = field(default_factory=dict)
    offered: Sequence[Offered] = ()
    # Ask at this step next (default: the first slot forgotten).
    step: str | None = None
    # The flow cannot go on (no appointment left): leave it after saying so.
    leave: bool = False


@dataclass(frozen=True, slots=True)
class Slot:
    """One row of a flow table: a value the flow needs and how to get it."""

    name: str
    prompt: str
    read: Reader
    # Either may end the flow with replies of its own (no appointment left).
    offer: Callable[[Turn], Awaitable[Offer | list[Reply]]] | None = None
    check: Callable[[Turn], Awaitable[Invalid | list[Reply] | None]] | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """``no`` at the confirmation: forget these slots and ask with ``ask``."""

    forget: tuple[str, ...]
    ask: str


@dataclass(frozen=True, slots=True)
class Keep:
    """``no`` at the confirmation: leave the flow saying ``say``."""

    say: str


Action = Callable[[Turn], Awaitable[list[Reply]]]


@dataclass(frozen=True, slots=True)
class Confirm:
    """The confirmation: its question and the transitions yes/no."""

    question: str
    yes: Action
    no: Change | Keep


@dataclass(frozen=True, slots=True)
class FlowTable:
    """A whole flow as data: its name (also the intent that starts it), slots, ending.

    Without ``confirm`` the action ``done`` runs as soon as every slot is
    filled (a hand-off, which needs none). ``values`` gives every prompt its
    template values (the service's label ...). ``context`` names the slots
    that relative words refer to ("same day", "an hour later").
    """

    name: str
    slots: tuple[Slot, ...]
    confirm: Confirm | None = None
    done: Action | None = None
    values: Values | None = None
    cancelled: str = "flow_cancelled"

    def __post_init__(self) -> None:
        if (self.confirm is None) == (self.done is None):
            raise ValueError(f"flow {self.name!r}: give exactly one of confirm or done")


# Leaving a flow in words ("never mind", "stop booking"). The single-word STOP
# words never get here: compliance takes them first.
FLOW_EXIT = re.compile(
    r"^\W*(never\s?mind|nvm|forget (it|that|about it)|stop (booking|this|that)|"
    r"cancel (that|this|the booking|booking|it)|don'?t (book|bother)|no thanks?,? (forget|never)\w*|"
    r"i changed my mind|skip it)\b",
    re.IGNORECASE,
)

# Questions the brain answers in the middle of a flow before asking again.
# A date or service inside one ("what are your hours on saturday?", "how much
# is a cleaning?") is part of the question, not the answer to the flow's.
QUESTION_INTENTS = frozenset({"hours", "location", "pricing", "help", "human", "my_appointments"})
# ...when clearly one: a bare "whitening" (pricing at ~0.4) answers "which service?".
QUESTION_CONFIDENCE = 0.6
CONFIRM = "confirm"


def is_digression(turn: Turn) -> bool:
    """Whether the message asks something else rather than answering the flow."""
    u = turn.understanding
    return turn.choice is None and u.intent in QUESTION_INTENTS and u.confidence >= QUESTION_CONFIDENCE


class TableFlow:
    """Runs one :class:`FlowTable`: the flow protocol of :mod:`bot.flows.base`."""

    def __init__(self, table: FlowTable) -> None:
        self.table = table
        self.name = table.name
        self._slots = {slot.name: slot for slot in table.slots}

    # -- the protocol -------------------------------------------------------
    async def start(self, turn: Turn) -> list[Reply]:
        turn.leave()
        turn.enter(self.name, self.table.slots[0].name if self.table.slots else CONFIRM)
        self._read(turn)
        had_reference = reference(turn) is not None
        replies = await self.advance(turn)
        if not had_reference and turn.ctx.state.flow == self.name and reference(turn) is not None:
            # "move it an hour earlier": the appointment just picked is what "earlier" refers to.
            turn.reread = None
            if self._read(turn):
                replies = await self.advance(turn)
        return replies

    async def prompt(self, turn: Turn) -> list[Reply]:
        return await self.advance(turn)

    async def answer(self, turn: Turn) -> list[Reply] | None:
        """The flow's answer to this message, or None when it is not for the flow."""
        if FLOW_EXIT.search(turn.ctx.message.body):
            turn.leave()
            return [turn.say(self.table.cancelled)]
        if is_digression(turn):
            return None
        if turn.among and turn.asking():
            # Several offered options fit ("the cleaning one" with two cleanings): ask which, once
            # (still several after that: the brain hands over, see Brain._stuck).
            return [turn.say("pick_which", offered=turn.among)]
        picked = self._apply_choice(turn)
        step = turn.ctx.state.step
        if step == CONFIRM and not picked and self.table.confirm is not None:
            # "actually, make it 10 instead": a correction, never another flow.
            if turn.choice is None and self._read(turn):
                return await self.advance(turn)
            if turn.yes_no == "affirm":
                return await self._act(turn, self.table.confirm.yes)
            if turn.yes_no == "deny":
                return await self._no(turn, self.table.confirm.no)
            return None
        if not picked and not self._read(turn):
            return None
        return await self.advance(turn)

    # -- the interpreter ----------------------------------------------------
    async def advance(self, turn: Turn) -> list[Reply]:
        """Ask for the first missing slot, or say what is wrong, or confirm."""
        for slot in self.table.slots:
            if turn.slots.get(slot.name) in (None, ""):
                offer = await slot.offer(turn) if slot.offer is not None else Offer()
                if isinstance(offer, list):
                    return offer
                if offer.fill is not None:
                    turn.slots.update(offer.fill)
                else:
                    turn.goto(slot.name)
                    return [
                        turn.say(
                            offer.template or slot.prompt,
                            offered=offer.offered,
                            **{**self._values(turn), **offer.values},
                        )
                    ]
            if slot.check is not None:
                problem = await slot.check(turn)
                if isinstance(problem, list):
                    return problem
                if problem is not None:
                    return self._invalid(turn, problem)
        if self.table.confirm is None:
            assert self.table.done is not None
            return await self._act(turn, self.table.done)
        turn.goto(CONFIRM)
        return [turn.say(self.table.confirm.question, choices=[YES, NO], **self._values(turn))]

    async def _act(self, turn: Turn, action: Action) -> list[Reply]:
        try:
            return await action(turn)
        except SlotTakenError:
            # Someone took the time while we were confirming: offer others.
            turn.slots.pop("time", None)
            return await self.advance(turn)

    def _values(self, turn: Turn) -> dict[str, Any]:
        return dict(self.table.values(turn)) if self.table.values is not None else {}

    def _invalid(self, turn: Turn, problem: Invalid) -> list[Reply]:
        values = {**self._values(turn), **problem.values}
        for name in problem.forget:
            turn.slots.pop(name, None)
        if problem.leave:
            turn.leave()
            return [turn.say(problem.template, **values)]
        turn.goto(problem.step or (problem.forget[0] if problem.forget else CONFIRM))
        return [turn.say(problem.template, offered=problem.offered, **values)]

    async def _no(self, turn: Turn, no: Change | Keep) -> list[Reply]:
        if isinstance(no, Keep):
            turn.leave()
            return [turn.say(no.say)]
        for name in no.forget:
            turn.slots.pop(name, None)
        turn.goto(no.forget[0])
        return [turn.say(no.ask, **self._values(turn))]

    def _read(self, turn: Turn) -> bool:
        """Fill or correct every slot this message names; whether any changed."""
        found = self.reread(turn)
        changed = False
        for slot in self.table.slots:
            for name, value in slot.read(turn, found).items():
                if value is None:
                    changed = turn.slots.pop(name, None) is not None or changed
                elif turn.slots.get(name) != value:
                    turn.slots[name] = value
                    changed = True
        return changed

    def reread(self, turn: Turn) -> Slots:
        """The message's slots read with the flow's context: a bare "10" is a time,
        "same day" and "an hour later" refer to the time in the flow."""
        if turn.reread is None:
            found = extract_slots(
                turn.ctx.message.body,
                now=turn.now,
                business=turn.business,
                ref=reference(turn),
                bare_hour=turn.ctx.state.step in ("time", CONFIRM),
            )
            # What NLU added beyond the words (the model's slots) fills what this reading lacks.
            have = turn.understanding.slots
            turn.reread = replace(
                found,
                service=found.service or have.service,
                date=found.date or have.date,
                time=found.time or have.time,
                approximate=found.approximate if found.time else have.approximate,
                time_window=found.time_window if found.time else have.time_window,
            )
        return turn.reread

    def _apply_choice(self, turn: Turn) -> bool:
        """Apply a picked option's payload (``service:…``, ``at:…``, ``appt:…``)."""
        kind, _, value = (turn.choice or "").partition(":")
        if not value or (kind not in CHOICE_SLOTS and kind not in self._slots):
            return False
        # "<slot>:<value>" sets that slot; "at:<ISO time>" sets the date and the time.
        updates = CHOICE_SLOTS[kind](turn, value) if kind in CHOICE_SLOTS else {kind: value}
        for name, slot_value in updates.items():
            if slot_value is None:
                turn.slots.pop(name, None)
            else:
                turn.slots[name] = slot_value
        return True


def reference(turn: Turn) -> datetime | None:
    """The moment relative words refer to: the flow's date and time, else the appointment's."""
    slots = turn.slots
    if slots.get("date"):
        moment = time.fromisoformat(str(slots["time"])) if slots.get("time") else time(12)
        return datetime.combine(date.fromisoformat(str(slots["date"])), moment, turn.business.tz)
    if slots.get("was"):
        return datetime.fromisoformat(str(slots["was"])).astimezone(turn.business.tz)
    return None


def _at(turn: Turn, value: str) -> dict[str, Any]:
    moment = datetime.fromisoformat(value).astimezone(turn.business.tz)
    return {"date": moment.date().isoformat(), "time": moment.strftime("%H:%M"), "window": None}


#: Option payloads that set more than their own slot: ``at:2026-03-03T15:00:00-05:00`` (date and time).
#: Any other payload is ``<slot>:<value>`` (``service:cleaning``, ``appt:ID``).
CHOICE_SLOTS: Mapping[str, Callable[[Turn, str], dict[str, Any]]] = {"at": _at}

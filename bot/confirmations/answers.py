"""What the bot does with an answer to a reminder: confirm, reschedule or cancel THAT appointment.

The appointment meant is the one whose reminder went out last
(:meth:`~bot.appointments.AppointmentBook.latest_reminded`), while it is
upcoming, however long after the reminder the answer comes. The lookup costs
Redis round trips, so it runs only for a message that reads as an answer
(:mod:`bot.confirmations.replies`) outside a flow, from a conversation whose
state (already loaded) says it booked an appointment still to come
(``booked_until``): ordinary messages keep their two round trips.

- **confirm**: the status becomes ``confirmed`` (source ``reply``, or
  ``button`` for WhatsApp's *Confirm*), one short thanks;
- **reschedule**: the reschedule flow, for that appointment (no "which one?"),
  with the day and time the answer named ("can we move it to friday");
- **cancel**: the cancel flow's one question for that appointment; after "yes"
  it is cancelled and a new time is offered ("Want to book another time?").

Example::

    answers = ReminderAnswers(replies=replies, flows=brain.flows)
    found = await answers.answer(turn, "ill b there")   # ("affirm", [Reply("Thanks for confirming! ...")])
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Final

from bot.confirmations.replies import ReminderAnswer, ReminderReplies
from bot.confirmations.status import Source, Status
from bot.flows.appointments import BOOKED_UNTIL, FROM_REMINDER, label, no_appointments
from bot.flows.base import Flow, Turn
from bot.flows.when import when_text
from bot.messages import Reply

#: The intent each answer is reported as.
INTENTS: Final[Mapping[ReminderAnswer, str]] = {"confirm": "affirm", "reschedule": "reschedule", "cancel": "cancel"}

Answered = tuple[str, list[Reply]]


class ReminderAnswers:
    """Reads a message against the latest reminder and acts on it."""

    def __init__(self, *, replies: ReminderReplies, flows: Mapping[str, Flow]) -> None:
        self.replies = replies
        self.flows = flows

    async def answer(self, turn: Turn, text: str) -> Answered | None:
        """The intent and replies when ``text`` answers a reminder, else None (the Brain goes on).

        A bare code ("C", "R") with nothing reminded is answered with
        "not sure what that answers", never read as a goodbye.
        """
        replies = self.replies.speaking(turn.business.language)  # "si", "no puedo ir": bot/confirmations/replies.py
        kind = replies.read(text)
        if kind is None:
            return None
        # From the state already loaded: no appointment booked here, or none still to come -> no lookup.
        until = turn.ctx.state.data.get(BOOKED_UNTIL)
        appt = None
        if until is not None and float(until) > turn.now.timestamp():
            appt = await turn.book.latest_reminded(turn.ctx.state.key, now=turn.now)
        if appt is None:
            if replies.is_code(text):
                return "fallback", [turn.say("nothing_pending")]
            return None
        return INTENTS[kind], await self.act(turn, kind, appt.id, source=Source.REPLY)

    def button(self, kind: ReminderAnswer) -> Callable[[Turn], Awaitable[list[Reply]]]:
        """The handler of the reminder template's button ``kind`` (``confirm`` / ``reschedule``)."""

        async def handler(turn: Turn) -> list[Reply]:
            key = turn.ctx.state.key
            appt = await turn.book.latest_reminded(key, now=turn.now)
            if appt is None:
                # A button of a reminder sent before reminders were recorded: the soonest appointment.
                upcoming = await turn.book.upcoming_for(key, now=turn.now)
                if not upcoming:
                    return no_appointments(turn)
                appt = upcoming[0]
            return await self.act(turn, kind, appt.id, source=Source.BUTTON)

        return handler

    async def act(self, turn: Turn, kind: ReminderAnswer, appt_id: str, *, source: Source) -> list[Reply]:
        """Confirm ``appt_id``, or start its reschedule or cancel flow."""
        if kind == "confirm":
            appt = await turn.book.get(appt_id)
            if appt is None or not appt.upcoming:
                return no_appointments(turn)
            appt = await turn.book.set_status(appt, Status.CONFIRMED, now=turn.now, source=source)
            return [turn.say("appointment_confirmed", service=label(turn, appt.service),
                             when=when_text(turn, appt.start))]
        flow = self.flows[kind]
        turn.leave()
        turn.enter(flow.name, "appt")
        turn.slots["appt"] = appt_id
        if kind == "cancel":
            turn.slots[FROM_REMINDER] = True
        elif source is Source.REPLY:
            # "can we move it to friday", "mejor el jueves": the day and time said are the flow's first answer.
            answered = await flow.answer(turn)
            if answered is not None:
                return answered
        return await flow.prompt(turn)

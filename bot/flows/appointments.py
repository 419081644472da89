"""Booking, rescheduling and cancelling appointments: three flow tables.

Each table reads top to bottom (see :mod:`bot.flows.table`): the slots, and
for each its question, how it is read, what is offered and how it is
checked; then the confirmation and what yes and no do. The date and time
rows come from :mod:`bot.flows.when`.

Example (a conversation)::

    user: cn i bk a clning tmrw arvo
    bot:  What time on Tue, Mar 3 works for your cleaning? I have: 1. 12:00 PM 2. 1:30 PM 3. 3:00 PM
    user: the 1:30
    bot:  Book a cleaning on Tue, Mar 3 at 1:30 PM? 1. Yes 2. No
    user: actually make it 3 instead
    bot:  Book a cleaning on Tue, Mar 3 at 3:00 PM? 1. Yes 2. No
    user: yes
    bot:  You're booked: cleaning on Tue, Mar 3 at 3:00 PM ...
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from bot.appointments import Appointment
from bot.flows.base import Turn
from bot.flows.options import Offered, pick
from bot.flows.table import Change, Confirm, FlowTable, Invalid, Keep, Offer, Slot
from bot.flows.when import (
    MAX_OPTIONS,
    able_resources,
    button_title,
    check_date,
    check_time,
    duration,
    fmt_when,
    offer_times,
    read_date,
    read_time,
    resource_label,
    start_time,
    when_text,
)
from bot.messages import Reply
from bot.nlu.slots import Slots, extract_slots

__all__ = ["BOOK", "BOOKED_UNTIL", "CANCEL", "FROM_REMINDER", "RESCHEDULE", "fmt_when", "label", "no_appointments"]

#: A slot of the cancel flow: the cancellation answers a reminder, so a new time is offered after it.
FROM_REMINDER = "from_reminder"
#: ``state.data`` key: the latest start (epoch seconds) this conversation booked or moved an appointment to.
#: Until then a reply may answer a reminder; without it no appointment is looked up (bot/confirmations/answers.py).
BOOKED_UNTIL = "booked_until"


def note_booked(turn: Turn, appt: Appointment) -> None:
    """Remember in the conversation's state that it has an appointment until ``appt``'s start."""
    data = turn.ctx.state.data
    data[BOOKED_UNTIL] = max(float(data.get(BOOKED_UNTIL) or 0), appt.start.timestamp())


def no_appointments(turn: Turn) -> list[Reply]:
    """None booked: say so, and let a "yes" start booking ("Want to book one?")."""
    turn.leave()
    turn.offer("book")
    return [turn.say("no_appointments")]


def label(turn: Turn, service_key: str | None) -> str:
    service = turn.business.service(service_key or "")
    return service.label.lower() if service else (service_key or "appointment")


def appointment_values(turn: Turn) -> Mapping[str, Any]:
    """What every question of these flows may name: the service, and the moment when known."""
    slots = turn.slots
    values: dict[str, Any] = {"service": label(turn, slots.get("service"))}
    # The stylist (chair ...) the texter named, when that one can do the service.
    named = slots.get("resource")
    values["resource"] = resource_label(turn, str(named)) if named in able_resources(turn) else None
    if slots.get("date") and slots.get("time"):
        values["when"] = when_text(turn, start_time(turn))
    elif slots.get("was"):
        values["when"] = when_text(turn, datetime.fromisoformat(str(slots["was"])))
    return values


# -- the service ----------------------------------------------------------------
def read_service(turn: Turn, found: Slots) -> Mapping[str, Any]:
    """The service the message names, and the stylist (chair ...) when it names one ("a trim w/ jess")."""
    named = turn.business.find_resource(turn.ctx.message.body)
    return {**({"service": found.service} if found.service else {}), **({"resource": named} if named else {})}


async def offer_services(turn: Turn) -> Offer:
    """Every service, numbered on SMS (buttons on WhatsApp when they fit)."""
    services = list(turn.business.services.values())
    offered = [Offered(f"service:{s.key}", s.label, service=s.key) for s in services]
    return Offer(offered=offered, values={"services": services})


# -- which appointment --------------------------------------------------------------
def read_nothing(turn: Turn, found: Slots) -> Mapping[str, Any]:
    """The appointment is picked from the offered list (by number, ordinal or content)."""
    return {}


# Naming which appointment: "the friday one", "my 3pm appointment", "the cleaning one on tues".
_WHICH = re.compile(r"\b(?:the|my|our)\s+((?:[\w:]+\s+){0,2}?[\w:]+)\s+(?:one|appointment|appt|booking)\b")


def _appointment_option(turn: Turn, appt: Appointment) -> Offered:
    tz = turn.business.tz
    title = f"{label(turn, appt.service)} {when_text(turn, appt.start)}"
    start = appt.start.astimezone(tz)
    return Offered(f"appt:{appt.id}", button_title(turn, title, appt.start, tz), appt.service, start)


async def offer_appointments(turn: Turn) -> Offer | list[Reply]:
    """The only upcoming appointment, the one the message names, or the list to pick from."""
    upcoming = await turn.book.upcoming_for(turn.ctx.state.key, now=turn.now)
    if not upcoming:
        return no_appointments(turn)
    if len(upcoming) == 1:
        return Offer(fill={"appt": upcoming[0].id})
    offered = [_appointment_option(turn, a) for a in upcoming]
    # "reschedule the friday one", "cancel my 3pm appointment": that one; the day
    # named there is which appointment, not a new day for it.
    which = _WHICH.search(turn.ctx.message.body.lower())
    if which is not None:
        phrase = which.group(1)
        found = extract_slots(phrase, now=turn.now, business=turn.business)
        chosen = pick(phrase, offered, found).chosen
        if chosen is not None:
            rest = extract_slots(_WHICH.sub(" ", turn.ctx.message.body.lower()), now=turn.now, business=turn.business)
            # The new day and time are only what the rest of the message says.
            when = {"date": rest.date.isoformat() if rest.date else None,
                    "time": rest.time.strftime("%H:%M") if rest.time and not rest.approximate else None,
                    "window": [t.strftime("%H:%M") for t in rest.time_window] if rest.time_window else None}
            for name, value in when.items():
                if value is None:
                    turn.slots.pop(name, None)
                else:
                    turn.slots[name] = value
            return Offer(fill={"appt": chosen.payload.partition(":")[2]})
    # "cancel my cleaning" with one cleaning among several appointments: that one.
    named = turn.understanding.slots.service
    same = [o for o in offered if named is not None and o.service == named]
    if len(same) == 1:
        return Offer(fill={"appt": same[0].payload.partition(":")[2]})
    shown = (same or offered)[:MAX_OPTIONS]
    listed = [{"service": label(turn, o.service), "when": when_text(turn, o.at)} for o in shown if o.at]
    return Offer(offered=shown, values={"action": turn.ctx.state.flow, "appointments": listed})


async def check_appointment(turn: Turn) -> Invalid | list[Reply] | None:
    """The picked appointment must still be the user's and upcoming; its service and time are kept."""
    appt = await turn.book.get(str(turn.slots["appt"]))
    if appt is None or not turn.book.belongs_to(appt, turn.ctx.state.key) or appt.start <= turn.now:
        return no_appointments(turn)
    turn.slots["service"] = appt.service
    turn.slots["was"] = appt.start.isoformat()
    return None


# -- the actions ------------------------------------------------------------------
async def book_it(turn: Turn) -> list[Reply]:
    """Store the appointment (raises SlotTakenError when the time just went)."""
    appt = await turn.book.add(
        turn.ctx.state.key,
        service=str(turn.slots["service"]),
        start=start_time(turn),
        duration_minutes=duration(turn),
        name=turn.ctx.message.profile_name,
        now=turn.now,
        resources=able_resources(turn),
    )
    turn.leave()
    note_booked(turn, appt)
    return [turn.say("booked", service=label(turn, appt.service), when=when_text(turn, appt.start),
                     resource=resource_label(turn, appt.resource))]


async def _on_appointment(turn: Turn, act: Callable[[Appointment], Awaitable[Appointment]], said: str) -> list[Reply]:
    """Run ``act`` on the picked appointment and say ``said`` about the result."""
    appt = await turn.book.get(str(turn.slots.get("appt")))
    if appt is None:
        return no_appointments(turn)
    done = await act(appt)
    turn.leave()
    note_booked(turn, done)
    return [turn.say(said, service=label(turn, done.service), when=when_text(turn, done.start))]


async def move_it(turn: Turn) -> list[Reply]:
    start = start_time(turn)
    return await _on_appointment(turn, lambda appt: turn.book.move(appt, start, now=turn.now), "rescheduled")


async def cancel_it(turn: Turn) -> list[Reply]:
    if not turn.slots.get(FROM_REMINDER):
        return await _on_appointment(turn, lambda appt: turn.book.cancel(appt, now=turn.now), "cancelled")
    # "can't make it" to a reminder: cancelled, and a "yes" next books that service again.
    service = turn.slots.get("service")
    replies = await _on_appointment(turn, lambda appt: turn.book.cancel(appt, now=turn.now), "cancelled_rebook")
    turn.offer("book", service=service)
    return replies


# -- the tables ---------------------------------------------------------------------
DATE = Slot("date", prompt="ask_date", read=read_date, check=check_date)
TIME = Slot("time", prompt="ask_time", read=read_time, offer=offer_times, check=check_time)
APPOINTMENT = Slot(
    "appt", prompt="pick_appointment", read=read_nothing, offer=offer_appointments, check=check_appointment
)

BOOK = FlowTable(
    name="book",
    slots=(
        Slot("service", prompt="ask_service", read=read_service, offer=offer_services),
        DATE,
        TIME,
    ),
    confirm=Confirm("confirm_booking", yes=book_it, no=Change(("date", "time"), ask="ask_change")),
    values=appointment_values,
)

RESCHEDULE = FlowTable(
    name="reschedule",
    slots=(APPOINTMENT, DATE, TIME),
    confirm=Confirm("confirm_reschedule", yes=move_it, no=Change(("date", "time"), ask="ask_change")),
    values=appointment_values,
)

CANCEL = FlowTable(
    name="cancel",
    slots=(APPOINTMENT,),
    confirm=Confirm("confirm_cancel", yes=cancel_it, no=Keep("cancel_kept")),
    values=appointment_values,
)

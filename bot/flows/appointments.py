"""Booking, rescheduling and cancelling appointments, as declared slot-filling flows.

Booking fills ``service`` → ``date`` → ``time`` (asking only for what is
missing), checks the time is in the future, inside opening hours and free,
offers the nearest free alternatives when not, then asks for confirmation.
Rescheduling and cancelling first pick the user's upcoming appointment.

Example (a conversation)::

    user: book a cleaning tomorrow at 3pm
    bot:  Book a cleaning on Tue, Mar 3 at 3:00 PM? 1. Yes 2. No
    user: 1
    bot:  You're booked: cleaning on Tue, Mar 3 at 3:00 PM ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.appointments import Appointment, SlotTakenError
from bot.flows.base import NO, YES, Turn
from bot.messages import Channel, Choice, Reply

#: WhatsApp quick-reply button titles hold at most this many characters.
BUTTON_TITLE_MAX = 20
MAX_OPTIONS = 3
SEARCH_DAYS = 14
STEP_MINUTES = 30

# Leaving a flow in words ("never mind", "stop booking"). The single-word STOP
# words never get here: compliance takes them first.
FLOW_EXIT = re.compile(
    r"^\W*(never\s?mind|nvm|forget (it|that|about it)|stop (booking|this|that)|"
    r"cancel (that|this|the booking|booking|it)|don'?t (book|bother)|no thanks?,? (forget|never)\w*|"
    r"i changed my mind|skip it)\b",
    re.IGNORECASE,
)


def fmt_when(moment: datetime, tz: Any) -> str:
    """``Tue, Mar 3 at 3:00 PM`` in the business time zone."""
    local = moment.astimezone(tz)
    return f"{local:%a, %b} {local.day} at {fmt_time(local.time())}"


def fmt_time(moment: time) -> str:
    return moment.strftime("%I:%M %p").lstrip("0")


def fmt_date(day: date) -> str:
    return f"{day:%a, %b} {day.day}"


def button_title(turn: Turn, title: str, moment: datetime, tz: Any) -> str:
    """``title``, or on WhatsApp a short ``Tue 3/3 10:30 AM`` when it is longer than a button allows.

    WhatsApp quick-reply titles hold 20 characters; a longer one would turn
    the buttons into numbered lines. SMS shows the full title as a numbered line.
    """
    if turn.ctx.message.channel is not Channel.WHATSAPP or len(title) <= BUTTON_TITLE_MAX:
        return title
    local = moment.astimezone(tz)
    return f"{local:%a} {local.month}/{local.day} {fmt_time(local.time())}"


def no_appointments(turn: Turn) -> list[Reply]:
    """None booked: say so, and let a "yes" start booking ("Want to book one?")."""
    turn.offer("book")
    return [turn.say("no_appointments")]


def _exit_requested(turn: Turn) -> bool:
    return bool(FLOW_EXIT.search(turn.ctx.message.body))


# Questions the brain answers in the middle of a flow before asking again.
# A date or service inside one ("what are your hours on saturday?", "how much
# is a cleaning?") is part of the question, not the answer to the flow's.
QUESTION_INTENTS = frozenset({"hours", "location", "pricing", "help", "human", "my_appointments"})
# ...when clearly one: a bare "whitening" (pricing at ~0.4) answers "which service?".
QUESTION_CONFIDENCE = 0.6


def is_digression(turn: Turn) -> bool:
    """Whether the message asks something else rather than answering the flow."""
    u = turn.understanding
    return turn.choice is None and u.intent in QUESTION_INTENTS and u.confidence >= QUESTION_CONFIDENCE


def merge_slots(turn: Turn) -> bool:
    """Copy what the message said (service, date, time, part of day) into the flow's slots."""
    found = turn.understanding.slots
    slots = turn.slots
    changed = False
    if found.service and found.service != slots.get("service") and "appt" not in slots:
        slots["service"] = found.service
        changed = True
    if found.date is not None:
        slots["date"] = found.date.isoformat()
        slots.pop("window", None)
        changed = True
    if found.time is not None and not found.approximate:
        slots["time"] = found.time.strftime("%H:%M")
        slots.pop("window", None)
        changed = True
    elif found.time_window is not None:
        slots["window"] = [t.strftime("%H:%M") for t in found.time_window]
        slots.pop("time", None)
        changed = True
    return changed


def apply_choice(turn: Turn) -> bool:
    """Apply an offered choice's payload (``service:…``, ``at:…``, ``appt:…``)."""
    choice = turn.choice or ""
    kind, _, value = choice.partition(":")
    if kind == "service":
        turn.slots["service"] = value
    elif kind == "at":
        moment = datetime.fromisoformat(value).astimezone(turn.business.tz)
        turn.slots["date"] = moment.date().isoformat()
        turn.slots["time"] = moment.strftime("%H:%M")
    elif kind == "appt":
        turn.slots["appt"] = value
    else:
        return False
    return True


@dataclass
class _When:
    start: datetime | None
    problem: str | None  # None | "past" | "closed" | "taken"


class WhenFlow:
    """Shared machinery for flows that settle on a date and time."""

    name = "when"
    confirm_template = "confirm_booking"

    def duration(self, turn: Turn) -> int:
        service = turn.business.service(str(turn.slots.get("service", "")))
        return service.duration_minutes if service else 30

    def service_label(self, turn: Turn) -> str:
        service = turn.business.service(str(turn.slots.get("service", "")))
        return service.label.lower() if service else "appointment"

    async def ignore_id(self, turn: Turn) -> str | None:
        return None

    async def candidates(self, turn: Turn, day: date, window: tuple[time, time] | None = None) -> list[datetime]:
        """Free start times on ``day`` (business-local), in the future, inside hours."""
        tz, duration = turn.business.tz, self.duration(turn)
        earliest = turn.now + timedelta(hours=1)
        ignore = await self.ignore_id(turn)
        taken = [
            a for a in await turn.book.busy(turn.ctx.message.bot, datetime.combine(day, time(12), tz)) if a.id != ignore
        ]
        found: list[datetime] = []
        for period in turn.business.ranges_on(day):
            cursor = datetime.combine(day, period.start, tz)
            closes = datetime.combine(day, period.end, tz)
            while cursor + timedelta(minutes=duration) <= closes:
                fits_window = window is None or window[0] <= cursor.time() < window[1]
                end = cursor + timedelta(minutes=duration)
                free = all(not (a.start < end and cursor < a.end) for a in taken)
                if fits_window and free and cursor >= earliest:
                    found.append(cursor)
                cursor += timedelta(minutes=STEP_MINUTES)
        return found

    async def nearest(self, turn: Turn, wanted: datetime) -> list[datetime]:
        """Up to three free times closest to ``wanted``, in date order."""
        pool: list[datetime] = []
        first_day = max(wanted.astimezone(turn.business.tz).date(), turn.local_now.date())
        for offset in range(SEARCH_DAYS):
            pool.extend(await self.candidates(turn, first_day + timedelta(days=offset)))
            if len(pool) >= MAX_OPTIONS * 3:
                break
        pool.sort(key=lambda moment: abs((moment - wanted).total_seconds()))
        return sorted(pool[:MAX_OPTIONS])

    def options(self, turn: Turn, moments: list[datetime], *, with_day: bool) -> list[Choice]:
        tz = turn.business.tz
        return [
            Choice(
                f"at:{m.isoformat()}",
                button_title(turn, fmt_when(m, tz), m, tz) if with_day else fmt_time(m.astimezone(tz).time()),
            )
            for m in moments
        ]

    async def check(self, turn: Turn) -> _When:
        tz = turn.business.tz
        day = date.fromisoformat(turn.slots["date"])
        hour, minute = map(int, str(turn.slots["time"]).split(":"))
        start = datetime.combine(day, time(hour, minute), tz)
        if start <= turn.now:
            return _When(start, "past")
        if not turn.business.is_open_at(start, self.duration(turn)):
            return _When(start, "closed")
        if not await turn.book.is_free(
            turn.ctx.message.bot, start, self.duration(turn), ignore=await self.ignore_id(turn)
        ):
            return _When(start, "taken")
        return _When(start, None)

    async def settle_when(self, turn: Turn) -> list[Reply] | None:
        """Ask for the missing date/time or offer alternatives; None when settled."""
        slots, label = turn.slots, self.service_label(turn)
        if not slots.get("date"):
            turn.goto("date")
            return [turn.say("ask_date", service=label)]
        day = date.fromisoformat(slots["date"])
        if day < turn.local_now.date():
            slots.pop("date")
            slots.pop("time", None)
            turn.goto("date")
            return [turn.say("slot_past", service=label)]
        if not slots.get("time"):
            window = None
            if slots.get("window"):
                start_s, end_s = slots["window"]
                window = (time.fromisoformat(start_s), time.fromisoformat(end_s))
            free = await self.candidates(turn, day, window)
            if not free:
                slots.pop("date")
                slots.pop("window", None)
                turn.goto("date")
                return [turn.say("day_full", day=fmt_date(day), service=label, closed=not turn.business.ranges_on(day))]
            turn.goto("time")
            picks = free[:: max(1, len(free) // MAX_OPTIONS)][:MAX_OPTIONS]
            return [
                turn.say(
                    "ask_time", day=fmt_date(day), service=label, choices=self.options(turn, picks, with_day=False)
                )
            ]
        verdict = await self.check(turn)
        if verdict.problem is None:
            return None
        assert verdict.start is not None
        slots.pop("time", None)
        if verdict.problem == "past":
            turn.goto("time")
            return [turn.say("slot_past", service=label)]
        alternatives = await self.nearest(turn, verdict.start)
        turn.goto("time")
        return [
            turn.say(
                "slot_unavailable",
                when=fmt_when(verdict.start, turn.business.tz),
                reason=verdict.problem,
                service=label,
                choices=self.options(turn, alternatives, with_day=True),
            )
        ]

    def start_time(self, turn: Turn) -> datetime:
        day = date.fromisoformat(turn.slots["date"])
        hour, minute = map(int, str(turn.slots["time"]).split(":"))
        return datetime.combine(day, time(hour, minute), turn.business.tz)

    async def confirm(self, turn: Turn) -> list[Reply]:
        turn.goto("confirm")
        return [
            turn.say(
                self.confirm_template,
                service=self.service_label(turn),
                when=fmt_when(self.start_time(turn), turn.business.tz),
                choices=[YES, NO],
            )
        ]

    async def answer_when(self, turn: Turn) -> list[Reply] | None:
        """Common answer handling for the date/time/confirm steps."""
        if _exit_requested(turn):
            turn.leave()
            return [turn.say("flow_cancelled")]
        if is_digression(turn):
            return None
        step = turn.ctx.state.step
        picked = apply_choice(turn)
        if step == "confirm" and not picked:
            if turn.yes_no == "affirm":
                return await self.act(turn)
            if turn.yes_no == "deny":
                turn.slots.pop("date", None)
                turn.slots.pop("time", None)
                turn.goto("date")
                return [turn.say("ask_change", service=self.service_label(turn))]
        if not picked and not merge_slots(turn):
            return None
        return await self.advance(turn)

    async def advance(self, turn: Turn) -> list[Reply]:
        raise NotImplementedError

    async def act(self, turn: Turn) -> list[Reply]:
        raise NotImplementedError


class BookFlow(WhenFlow):
    """``book``: service → date → time → confirm → stored appointment."""

    name = "book"

    async def start(self, turn: Turn) -> list[Reply]:
        turn.leave()
        turn.enter(self.name, "service")
        merge_slots(turn)
        return await self.advance(turn)

    async def prompt(self, turn: Turn) -> list[Reply]:
        return await self.advance(turn)

    async def answer(self, turn: Turn) -> list[Reply] | None:
        if (
            turn.ctx.state.step == "service"
            and not turn.choice
            and (turn.understanding.slots.service is None or is_digression(turn))
        ):
            if _exit_requested(turn):
                turn.leave()
                return [turn.say("flow_cancelled")]
            return None
        return await self.answer_when(turn)

    async def advance(self, turn: Turn) -> list[Reply]:
        if not turn.slots.get("service"):
            turn.goto("service")
            services = list(turn.business.services.values())
            return [
                turn.say(
                    "ask_service",
                    services=services,
                    choices=[Choice(f"service:{s.key}", s.label) for s in services[:MAX_OPTIONS]]
                    if len(services) <= MAX_OPTIONS
                    else [],
                )
            ]
        pending = await self.settle_when(turn)
        return pending if pending is not None else await self.confirm(turn)

    async def act(self, turn: Turn) -> list[Reply]:
        key = turn.ctx.state.key
        start = self.start_time(turn)
        try:
            appt = await turn.book.add(
                key,
                service=str(turn.slots["service"]),
                start=start,
                duration_minutes=self.duration(turn),
                name=turn.ctx.message.profile_name,
                now=turn.now,
            )
        except SlotTakenError:
            turn.slots.pop("time", None)
            return await self.advance(turn)
        turn.leave()
        return [
            turn.say("booked", service=self._label(turn, appt.service), when=fmt_when(appt.start, turn.business.tz))
        ]

    @staticmethod
    def _label(turn: Turn, service: str) -> str:
        found = turn.business.service(service)
        return found.label.lower() if found else service


class _PickAppointment(WhenFlow):
    """Flows that act on one of the user's upcoming appointments."""

    async def appointment(self, turn: Turn) -> Appointment | None:
        appt_id = turn.slots.get("appt")
        return None if appt_id is None else await turn.book.get(str(appt_id))

    async def ignore_id(self, turn: Turn) -> str | None:
        value = turn.slots.get("appt")
        return None if value is None else str(value)

    async def start(self, turn: Turn) -> list[Reply]:
        turn.leave()
        upcoming = await turn.book.upcoming_for(turn.ctx.state.key, now=turn.now)
        if not upcoming:
            return no_appointments(turn)
        turn.enter(self.name, "pick")
        # "cancel my cleaning" with one cleaning among several appointments: that one.
        named = turn.understanding.slots.service
        same = [a for a in upcoming if a.service == named]
        if len(upcoming) == 1 or len(same) == 1:
            self._use(turn, upcoming[0] if len(upcoming) == 1 else same[0])
            merge_slots(turn)
            return await self.advance(turn)
        tz = turn.business.tz
        offered = upcoming[:MAX_OPTIONS]
        listed = [{"service": self._label(turn, a), "when": fmt_when(a.start, tz)} for a in offered]
        return [
            turn.say(
                "pick_appointment",
                action=self.name,
                appointments=listed,
                choices=[
                    Choice(
                        f"appt:{a.id}",
                        button_title(turn, f"{self._label(turn, a)} {fmt_when(a.start, tz)}", a.start, tz),
                    )
                    for a in offered
                ],
            )
        ]

    def _use(self, turn: Turn, appt: Appointment) -> None:
        turn.slots["appt"] = appt.id
        turn.slots["service"] = appt.service

    @staticmethod
    def _label(turn: Turn, appt: Appointment) -> str:
        found = turn.business.service(appt.service)
        return found.label.lower() if found else appt.service

    async def prompt(self, turn: Turn) -> list[Reply]:
        return await self.advance(turn)

    async def answer(self, turn: Turn) -> list[Reply] | None:
        if turn.ctx.state.step == "pick":
            if _exit_requested(turn):
                turn.leave()
                return [turn.say("flow_cancelled")]
            if not apply_choice(turn):
                return None
            appt = await self.appointment(turn)
            if appt is None:
                turn.leave()
                return no_appointments(turn)
            self._use(turn, appt)
            return await self.advance(turn)
        return await self.answer_when(turn)


class RescheduleFlow(_PickAppointment):
    """``reschedule``: pick the appointment → new date → time → confirm → moved."""

    name = "reschedule"
    confirm_template = "confirm_reschedule"

    async def advance(self, turn: Turn) -> list[Reply]:
        pending = await self.settle_when(turn)
        return pending if pending is not None else await self.confirm(turn)

    async def act(self, turn: Turn) -> list[Reply]:
        appt = await self.appointment(turn)
        if appt is None:
            turn.leave()
            return no_appointments(turn)
        try:
            moved = await turn.book.move(appt, self.start_time(turn), now=turn.now)
        except SlotTakenError:
            turn.slots.pop("time", None)
            return await self.advance(turn)
        turn.leave()
        return [turn.say("rescheduled", service=self._label(turn, moved), when=fmt_when(moved.start, turn.business.tz))]


class CancelFlow(_PickAppointment):
    """``cancel``: pick the appointment → confirm → cancelled."""

    name = "cancel"

    async def advance(self, turn: Turn) -> list[Reply]:
        appt = await self.appointment(turn)
        if appt is None:
            turn.leave()
            return no_appointments(turn)
        turn.goto("confirm")
        return [
            turn.say(
                "confirm_cancel",
                service=self._label(turn, appt),
                when=fmt_when(appt.start, turn.business.tz),
                choices=[YES, NO],
            )
        ]

    async def answer(self, turn: Turn) -> list[Reply] | None:
        if turn.ctx.state.step != "confirm":
            return await super().answer(turn)
        if _exit_requested(turn):
            turn.leave()
            return [turn.say("flow_cancelled")]
        if turn.yes_no == "affirm":
            return await self.act(turn)
        if turn.yes_no == "deny":
            turn.leave()
            return [turn.say("cancel_kept")]
        return None

    async def act(self, turn: Turn) -> list[Reply]:
        appt = await self.appointment(turn)
        turn.leave()
        if appt is None:
            return no_appointments(turn)
        await turn.book.cancel(appt, now=turn.now)
        return [turn.say("cancelled", service=self._label(turn, appt), when=fmt_when(appt.start, turn.business.tz))]

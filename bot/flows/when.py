"""The date and time slots every appointment flow shares: reading, offering, checking.

- ``date``: a day the business is open, today or later. A date that has
  passed is said to have passed and an upcoming one asked for (never moved
  to next year silently); a closed or fully booked day offers the nearest
  free times, numbered and pickable.
- ``time``: a free start inside opening hours for the whole service, not in
  the past; otherwise the nearest free times are offered. Asked for with a
  few free times of the day (within the part of the day, "fri morning").

Example::

    Slot("date", prompt="ask_date", read=read_date, check=check_date)
    Slot("time", prompt="ask_time", read=read_time, offer=offer_times, check=check_time)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from bot.appointments import free_of
from bot.channels import profile_of
from bot.flows.base import Turn
from bot.flows.options import Offered
from bot.flows.table import Invalid, Offer
from bot.languages.profile import DEFAULT_LANGUAGE, profile_for
from bot.nlu.slots import Slots

MAX_OPTIONS = 3
SEARCH_DAYS = 14
STEP_MINUTES = 30
#: The earliest bookable start is this far from now.
LEAD = timedelta(hours=1)


def fmt_when(moment: datetime, tz: Any, language: str = DEFAULT_LANGUAGE) -> str:
    """``Tue, Mar 3 at 3:00 PM`` in the business time zone (``martes 3 de marzo a las 3:00 pm`` in Spanish)."""
    return profile_for(language).fmt_when(moment, tz)


def when_text(turn: Turn, moment: datetime) -> str:
    """``moment`` as :func:`fmt_when` writes it, in the turn's business zone and language."""
    return fmt_when(moment, turn.business.tz, turn.business.language)


def fmt_time(moment: time, language: str = DEFAULT_LANGUAGE) -> str:
    return profile_for(language).fmt_time(moment)


def fmt_date(day: date, language: str = DEFAULT_LANGUAGE) -> str:
    return profile_for(language).fmt_date(day)


def button_title(turn: Turn, title: str, moment: datetime, tz: Any) -> str:
    """``title``, or on WhatsApp a short ``Tue 3/3 10:30 AM`` when it is longer than a button allows.

    WhatsApp quick-reply titles hold 20 characters; a longer one would turn
    the buttons into numbered lines. SMS shows the full title as a numbered line.
    """
    limit = profile_of(turn.ctx.message.channel).button_title_max
    if limit is None or len(title) <= limit:
        return title
    return profile_for(turn.business.language).fmt_short(moment, tz)


# -- reading ------------------------------------------------------------------
def read_date(turn: Turn, found: Slots) -> Mapping[str, Any]:
    """The day the message names; a new day forgets an earlier part of the day."""
    if found.date is None:
        return {}
    return {"date": found.date.isoformat(), **({} if found.time_window else {"window": None})}


def read_time(turn: Turn, found: Slots) -> Mapping[str, Any]:
    """An exact time, or a part of the day ("morning": a window to offer times in)."""
    if found.time is not None and not found.approximate:
        return {"time": found.time.strftime("%H:%M"), "window": None}
    if found.time_window is not None:
        return {"window": [t.strftime("%H:%M") for t in found.time_window], "time": None}
    return {}


# -- free times ---------------------------------------------------------------
def able_resources(turn: Turn) -> tuple[str, ...]:
    """Who can do the service: only the stylist (chair ...) the texter named, when that one can."""
    able = turn.book.resources_for(str(turn.slots.get("service", "")))
    named = turn.slots.get("resource")
    return (str(named),) if named in able else able


def resource_label(turn: Turn, key: str | None) -> str | None:
    """A resource's label ("Jess") for replies; None without resources in business.yaml."""
    resource = turn.business.resources.get(key or "")
    return resource.label if resource is not None else None


def duration(turn: Turn) -> int:
    service = turn.business.service(str(turn.slots.get("service", "")))
    return service.duration_minutes if service else 30


async def candidates(turn: Turn, day: date, window: tuple[time, time] | None = None) -> list[datetime]:
    """Free start times on ``day`` (business-local), in the future, inside hours."""
    tz, minutes = turn.business.tz, duration(turn)
    able = able_resources(turn)
    earliest = turn.now + LEAD
    ignore = turn.slots.get("appt")
    taken = [
        a for a in await turn.book.busy(turn.ctx.message.bot, datetime.combine(day, time(12), tz)) if a.id != ignore
    ]
    found: list[datetime] = []
    for period in turn.business.ranges_on(day):
        cursor = datetime.combine(day, period.start, tz)
        closes = datetime.combine(day, period.end, tz)
        while cursor + timedelta(minutes=minutes) <= closes:
            fits_window = window is None or window[0] <= cursor.time() < window[1]
            end = cursor + timedelta(minutes=minutes)
            free = bool(free_of(taken, able, cursor, end))  # some resource able to do it is free
            if fits_window and free and cursor >= earliest:
                found.append(cursor)
            cursor += timedelta(minutes=STEP_MINUTES)
    return found


async def nearest(turn: Turn, wanted: datetime) -> list[datetime]:
    """Up to three free times closest to ``wanted``, in date order."""
    pool: list[datetime] = []
    first_day = max(wanted.astimezone(turn.business.tz).date(), turn.local_now.date())
    for offset in range(SEARCH_DAYS):
        pool.extend(await candidates(turn, first_day + timedelta(days=offset)))
        if len(pool) >= MAX_OPTIONS * 3:
            break
    pool.sort(key=lambda moment: abs((moment - wanted).total_seconds()))
    return sorted(pool[:MAX_OPTIONS])


def options(turn: Turn, moments: list[datetime], *, with_day: bool) -> list[Offered]:
    """Start times as options: ``Tue, Mar 3 at 3:00 PM`` (or ``3:00 PM`` within one day)."""
    tz, lang = turn.business.tz, turn.business.language
    return [
        Offered(
            f"at:{m.isoformat()}",
            button_title(turn, fmt_when(m, tz, lang), m, tz) if with_day else fmt_time(m.astimezone(tz).time(), lang),
            at=m.astimezone(tz),
        )
        for m in moments
    ]


def _window(turn: Turn) -> tuple[time, time] | None:
    window = turn.slots.get("window")
    if not window:
        return None
    return time.fromisoformat(window[0]), time.fromisoformat(window[1])


def start_time(turn: Turn) -> datetime:
    """The start the flow's ``date`` and ``time`` slots name, business-local."""
    day = date.fromisoformat(turn.slots["date"])
    return datetime.combine(day, time.fromisoformat(str(turn.slots["time"])), turn.business.tz)


# -- offering and checking ------------------------------------------------------
async def offer_times(turn: Turn) -> Offer:
    """A few free times of the chosen day (in the part of the day asked for)."""
    day = date.fromisoformat(turn.slots["date"])
    free = await candidates(turn, day, _window(turn)) or await candidates(turn, day)
    picks = free[:: max(1, len(free) // MAX_OPTIONS)][:MAX_OPTIONS]
    return Offer(offered=options(turn, picks, with_day=False), values={"day": fmt_date(day, turn.business.language)})


async def check_date(turn: Turn) -> Invalid | None:
    """A past day is said to have passed; a closed or full day offers the nearest free times."""
    day = date.fromisoformat(turn.slots["date"])
    if day < turn.local_now.date():
        past = {"day": fmt_date(day, turn.business.language)}
        return Invalid("date_past", forget=("date", "time", "window"), values=past)
    if turn.slots.get("time"):
        return None  # the time's own check says what is wrong with that moment
    if await candidates(turn, day):
        return None
    wanted = datetime.combine(day, time(9), turn.business.tz)
    return Invalid(
        "day_full",
        forget=("date", "window"),
        values={"day": fmt_date(day, turn.business.language), "closed": not turn.business.ranges_on(day)},
        offered=options(turn, await nearest(turn, wanted), with_day=True),
    )


async def check_time(turn: Turn) -> Invalid | None:
    """The moment must be ahead, inside opening hours for the whole service, and free."""
    start = start_time(turn)
    if start <= turn.now:
        return Invalid("slot_past", forget=("time",))
    minutes = duration(turn)
    if turn.business.is_open_at(start, minutes):
        ignore = turn.slots.get("appt")
        service = str(turn.slots.get("service", ""))
        if await turn.book.is_free(turn.ctx.message.bot, start, minutes, ignore=ignore, service=service,
                                   resources=able_resources(turn)):
            return None
        reason = "taken"
    else:
        # A day with no hours at all is said plainly ("We're closed on Sun, Mar 8.").
        reason = "closed" if turn.business.ranges_on(start.astimezone(turn.business.tz).date()) else "closed_day"
    return Invalid(
        "slot_unavailable",
        forget=("time",),
        values={"when": when_text(turn, start), "reason": reason,
                "day": fmt_date(start.astimezone(turn.business.tz).date(), turn.business.language)},
        offered=options(turn, await nearest(turn, start), with_day=True),
    )

"""``bot appointments``: who is coming, staff marks, and the figures, from the command line.

``bot/cli.py`` registers the group (``app.add_typer(appointments_app, name="appointments")``).
It reads the appointments in the Redis of ``REDIS_URL``; days are the
business's local days (``timezone`` in ``business.yaml``).

Example::

    bot appointments list --day 2026-03-03 --status confirmed
    bot appointments mark 3f9a1c2b7d4e no-show
    bot appointments stats --since 2026-03-01
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, TypeVar

import typer

from bot.cli_support import command_group, on_stores, redis_url_for
from bot.cli_support import fail as _fail
from bot.confirmations.status import Source, Status
from bot.errors import BotError

if TYPE_CHECKING:
    from bot.appointments import Appointment, AppointmentBook

appointments_app = command_group(
    "appointments", "Appointments: a day's list with statuses, staff marks (completed, no-show, cancelled), figures."
)

#: What staff may mark (confirmations come from patients).
STAFF_MARKS: Final = (Status.COMPLETED, Status.NO_SHOW, Status.CANCELLED)
T = TypeVar("T")


def _day(raw: str, option: str) -> date:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise _fail(f"{option} {raw!r}: give a date like 2026-03-03") from None


def _run(work: Callable[[AppointmentBook], Awaitable[T]]) -> T:
    """Run ``work`` on the appointment book in the Redis of ``REDIS_URL``."""
    from bot.appointments import AppointmentBook
    from bot.business import load_business
    from bot.cli import settings_or_exit  # bot.cli registers this group: import late

    settings = settings_or_exit()
    redis_url = redis_url_for(settings.redis_url, "appointments live in Redis")
    business = load_business(Path(settings.intents_dir) / "business.yaml")
    return on_stores(redis_url, lambda stores: work(AppointmentBook(stores.appointments, business.tz,
                                                                    resources=business)))


def describe(appt: Appointment, tz: object) -> str:
    """One line of the list: id, local time, service, status, the last change, who (number masked).

    Example::

        describe(appt, business.tz)
        # "3f9a1c2b7d4e  09:30  cleaning  confirmed (button 2026-03-02 18:04)  Ana  +1415*****23"
    """
    from bot.observability import mask_phone

    local = appt.start.astimezone(tz)  # type: ignore[arg-type]
    last = appt.changes[-1] if appt.changes else None
    change = ""
    if last is not None:
        at = datetime.fromtimestamp(last.at, local.tzinfo).strftime("%Y-%m-%d %H:%M")
        change = f" ({last.source.value} {at})"
    who = f"{appt.name}  " if appt.name else ""
    return f"{appt.id}  {local:%H:%M}  {appt.service}  {appt.status.value}{change}  {who}{mask_phone(appt.user)}"


@appointments_app.command("list")
def list_day(
    day: Annotated[str, typer.Option("--day", help="The business-local day.", metavar="DATE")],
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status: booked, confirmed, completed, cancelled, no-show.")
    ] = None,
) -> None:
    """The appointments of DATE, earliest first, with their status and its last change."""
    wanted = _status(status) if status else None
    when = _day(day, "--day")

    async def work(book: AppointmentBook) -> list[str]:
        return [describe(a, book.tz) for a in await book.on_date(when, status=wanted)]

    lines = _run(work)
    for line in lines:
        typer.echo(line)
    typer.echo(f"{len(lines)} appointment{'s' if len(lines) != 1 else ''} on {when.isoformat()}"
               + (f" ({wanted.value})" if wanted else ""))


@appointments_app.command("mark")
def mark(
    ident: Annotated[str, typer.Argument(help="The appointment id (first column of `bot appointments list`).")],
    status: Annotated[str, typer.Argument(help="completed, no-show or cancelled.", metavar="STATUS")],
) -> None:
    """Record a visit's outcome (completed, no-show) or cancel an appointment, as staff."""
    new = _status(status)
    if new not in STAFF_MARKS:
        raise _fail(f"staff mark an appointment {', '.join(s.value for s in STAFF_MARKS)}, not {new.value}")

    async def work(book: AppointmentBook) -> str:
        appt = await book.get(ident.strip())
        if appt is None:
            raise _fail(f"no appointment {ident!r}")
        from bot.clock import SystemClock

        changed = await book.set_status(appt, new, now=SystemClock().now(), source=Source.STAFF)
        return describe(changed, book.tz)

    typer.echo(_run(work))


@appointments_app.command("stats")
def stats(
    since: Annotated[str, typer.Option("--since", help="First business-local day.", metavar="DATE")],
    until: Annotated[
        str | None, typer.Option("--until", help="Last day (default: today).", metavar="DATE")
    ] = None,
) -> None:
    """Appointments by status, confirmation rate and no-show rate from DATE on."""
    from bot.confirmations.figures import figures_between

    first = _day(since, "--since")

    async def work(book: AppointmentBook) -> list[str]:
        from bot.clock import SystemClock

        last = _day(until, "--until") if until else SystemClock().now().astimezone(book.tz).date()
        if last < first:
            raise _fail(f"--until {last.isoformat()} is before --since {first.isoformat()}")
        figures = await figures_between(book, first, last)
        return [f"{first.isoformat()} to {last.isoformat()}", *figures.lines()]

    for line in _run(work):
        typer.echo(line)


def _status(raw: str) -> Status:
    try:
        return Status.parse(raw)
    except BotError as exc:
        raise _fail(str(exc)) from None


@appointments_app.command("recall-consent")
def recall_consent(
    number: Annotated[str, typer.Argument(help="The patient's number, E.164 (+14155550123).")],
    channel: Annotated[str, typer.Option("--channel", help="sms or whatsapp.")] = "sms",
    note: Annotated[str, typer.Option("--note", help="Where it was given (a form, the front desk).")] = "",
) -> None:
    """Record the patient's marketing consent (recall invitations need it; docs/confirmations.md)."""
    from bot.cli import settings_or_exit
    from bot.clock import SystemClock
    from bot.compliance.ledger import AddressHasher, build_consent_ledger
    from bot.confirmations.marketing import record_marketing_consent
    from bot.messages import Channel
    from bot.observability import mask_phone
    from bot.storage.base import ConversationKey
    from bot.storage.stores import Stores

    if channel not in ("sms", "whatsapp"):
        raise _fail(f"--channel must be sms or whatsapp, not {channel!r}")
    user = number.strip().removeprefix("whatsapp:")
    if not user.startswith("+") or not user[1:].isdigit():
        raise _fail(f"{number!r} is not a phone number; write it as + and country code, e.g. +14155550123")
    settings = settings_or_exit()
    redis_url = redis_url_for(settings.redis_url, "the consent ledger lives in Redis")
    key_secret = settings.consent_hash_key
    hasher = AddressHasher(key_secret.get_secret_value() if key_secret else None)
    key = ConversationKey(Channel(channel), settings.twilio_phone_number or "", user)

    async def work(stores: Stores) -> bool:
        return await record_marketing_consent(build_consent_ledger(stores.conversations), hasher, key,
                                              at=SystemClock().now(), note=note or "staff")

    on_stores(redis_url, work)
    typer.echo(f"marketing consent recorded for {mask_phone(user)} ({channel})")

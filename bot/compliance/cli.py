"""``bot consent``: the consent ledger and do-not-send records from the command line.

``bot/cli.py`` registers the group (``app.add_typer(consent_app, name="consent")``).

Example::

    bot consent export --since 2026-03-01 > consent.csv
    bot consent show +14155550123
    bot consent clear-unreachable +14155550123
    bot consent opt-out +14155550123 --note "asked at the front desk"
    bot consent help-text
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import phonenumbers
import typer

from bot.cli_support import command_group, on_stores, redis_url_for
from bot.cli_support import fail as _fail
from bot.errors import BotError

if TYPE_CHECKING:
    from bot.compliance.ledger import AddressHasher, ConsentLedger
    from bot.settings import Settings
    from bot.storage.stores import Stores

consent_app = command_group(
    "consent", "The consent ledger: export, one number's history, staff opt-outs, unreachable marks, HELP text."
)

T = TypeVar("T")
ChannelOption = Annotated[
    str, typer.Option("--channel", help="sms, whatsapp or all.", case_sensitive=False)
]


def _settings() -> Settings:
    from bot.cli import settings_or_exit  # bot.cli registers this group: import late

    return settings_or_exit()


def _number(raw: str) -> str:
    """``raw`` as E.164 ("whatsapp:" prefix and spaces allowed), or exit 2."""
    bare = raw.strip().removeprefix("whatsapp:").strip()
    try:
        parsed = phonenumbers.parse(bare, None)
    except phonenumbers.NumberParseException:
        raise _fail(f"{raw!r} is not a phone number; write it as + and country code, e.g. +14155550123") from None
    if not phonenumbers.is_possible_number(parsed):
        raise _fail(f"{raw!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _record_channels() -> list[str]:
    """The channels with opt-outs of their own (a call shares the SMS ones)."""
    from bot.channels import profile_of
    from bot.messages import Channel

    return list(dict.fromkeys(profile_of(c).records_channel.value for c in Channel))


def _channels(name: str) -> list[str]:
    name = name.lower()
    known = _record_channels()
    if name == "all":
        return known
    if name not in known:
        raise _fail(f"--channel must be {', '.join(known)} or all, not {name!r}")
    return [name]


def _since(raw: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        try:
            day = date.fromisoformat(raw)
        except ValueError:
            raise _fail(f"--since {raw!r}: give a date (2026-03-01) or an ISO date and time") from None
        parsed = datetime(day.year, day.month, day.day)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _run(settings: Settings, work: Callable[[Stores, ConsentLedger, AddressHasher], Awaitable[T]]) -> T:
    """Run ``work`` against the Redis of ``REDIS_URL`` (the ledger lives there)."""
    from bot.compliance.ledger import AddressHasher, build_consent_ledger

    redis_url = redis_url_for(settings.redis_url, "the consent ledger lives in Redis")
    key = settings.consent_hash_key
    hasher = AddressHasher(key.get_secret_value() if key else None)
    return on_stores(redis_url, lambda stores: work(stores, build_consent_ledger(stores.conversations), hasher))


@consent_app.command("export")
def export(
    since: Annotated[str, typer.Option("--since", help="First day (UTC) or ISO date and time.", metavar="DATE")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the CSV to FILE (default: standard output).")
    ] = None,
) -> None:
    """Every opt-in and opt-out since DATE, as CSV (addresses masked and hashed)."""
    from bot.compliance.ledger import FIELDS

    start = _since(since)
    settings = _settings()

    async def work(stores: Stores, ledger: ConsentLedger, hasher: AddressHasher) -> int:
        out = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
            writer.writeheader()
            count, offset, page = 0, 0, 1000
            while True:
                events = await ledger.since(start.timestamp(), limit=page, offset=offset)
                for event in events:
                    writer.writerow(event.row())
                count += len(events)
                offset += len(events)
                if len(events) < page:
                    return count
        finally:
            if output:
                out.close()

    count = _run(settings, work)
    if output:
        typer.echo(f"wrote {count} entries to {output}", err=True)


@consent_app.command("show")
def show(number: Annotated[str, typer.Argument(help="The phone number, E.164 (+14155550123).")]) -> None:
    """One number's consent history, and whether it may be texted now."""
    from bot.compliance.ledger import ConsentEvent
    from bot.messages import Channel
    from bot.observability import mask_phone
    from bot.outbound.suppression import unreachable_key
    from bot.storage.base import ConversationKey

    user = _number(number)
    settings = _settings()

    async def work(
        stores: Stores, ledger: ConsentLedger, hasher: AddressHasher
    ) -> tuple[list[ConsentEvent], list[str]]:
        history = await ledger.history(hasher.hash(user))
        status: list[str] = []
        bots = sorted({(e.channel, e.bot) for e in history}, key=lambda p: (p[0].value, p[1]))
        if settings.twilio_phone_number:
            for channel in map(Channel, _record_channels()):
                if (channel, settings.twilio_phone_number) not in bots:
                    bots.append((channel, settings.twilio_phone_number))
        for channel, bot in bots:
            opted = await stores.conversations.is_opted_out(ConversationKey(channel, bot, user))
            status.append(f"{channel.value} to {bot}: {'OPTED OUT' if opted else 'may be texted'}")
        for channel in map(Channel, _record_channels()):
            if await stores.ledger.get(unreachable_key(ConversationKey(channel, "", user))) is not None:
                status.append(f"{channel.value}: marked UNREACHABLE (bot consent clear-unreachable {user})")
        return history, status

    history, status = _run(settings, work)
    typer.echo(f"{mask_phone(user)}: {len(history)} consent entries")
    for event in history:
        words = f' "{event.words}"' if event.words else ""
        typer.echo(f"  {event.time}  {event.action:<7}  {event.channel.value:<8}  {event.source:<16}  "
                   f"{event.message_sid or '-'}{words}")
    for line in status:
        typer.echo(f"  now: {line}")


@consent_app.command("clear-unreachable")
def clear_unreachable(
    number: Annotated[str, typer.Argument(help="The phone number, E.164 (+14155550123).")],
    channel: ChannelOption = "all",
) -> None:
    """Allow sends again to a number marked unreachable (21211, 21614, 30006): ported, fixed, mistyped."""
    from bot.messages import Channel
    from bot.observability import Metrics
    from bot.outbound.suppression import Suppressions, unreachable_key
    from bot.storage.base import ConversationKey

    user = _number(number)
    channels = _channels(channel)
    settings = _settings()

    async def work(stores: Stores, ledger: ConsentLedger, hasher: AddressHasher) -> list[str]:
        suppressions = Suppressions(stores.conversations, stores.ledger, Metrics())
        cleared = []
        for name in channels:
            key = ConversationKey(Channel(name), "", user)
            if await stores.ledger.get(unreachable_key(key)) is not None:
                await suppressions.clear_unreachable(key)
                cleared.append(name)
        return cleared

    cleared = _run(settings, work)
    if not cleared:
        typer.echo(f"{user} was not marked unreachable ({', '.join(channels)}): nothing to clear")
        return
    typer.echo(f"cleared the unreachable mark of {user} on {', '.join(cleared)}")


def _staff_change(number: str, channel: str, from_: str | None, note: str, *, opt_out: bool) -> None:
    from bot.compliance.ledger import ConsentEvent
    from bot.messages import Channel
    from bot.storage.base import ConversationKey

    user = _number(number)
    channels = _channels(channel)
    settings = _settings()
    bot = (from_ or settings.twilio_phone_number or "").removeprefix("whatsapp:").strip()
    if not bot:
        raise _fail("no bot number: pass --from or set TWILIO_PHONE_NUMBER")
    now = datetime.now(UTC)

    async def work(stores: Stores, ledger: ConsentLedger, hasher: AddressHasher) -> list[str]:
        changed = []
        for name in channels:
            key = ConversationKey(Channel(name), bot, user)
            if await stores.conversations.is_opted_out(key) == opt_out:
                continue
            await stores.conversations.set_opted_out(key, opt_out)
            await ledger.append(ConsentEvent.create(
                action="opt_out" if opt_out else "opt_in", channel=key.channel, bot=bot, user=user,
                source="staff", at=now, hasher=hasher, words=note,
            ))
            changed.append(name)
        return changed

    changed = _run(settings, work)
    what = "opted out" if opt_out else "opted in"
    if not changed:
        typer.echo(f"{user} was already {what} ({', '.join(channels)}): nothing recorded")
        return
    typer.echo(f"{user} {what} on {', '.join(changed)} (recorded, source staff)")


@consent_app.command("opt-out")
def staff_opt_out(
    number: Annotated[str, typer.Argument(help="The phone number, E.164.")],
    channel: ChannelOption = "all",
    from_: Annotated[str | None, typer.Option("--from", help="The bot number (default TWILIO_PHONE_NUMBER).")] = None,
    note: Annotated[str, typer.Option(help="Why, for the ledger (no health details).")] = "",
) -> None:
    """Record an opt-out a patient asked for outside the chat (phone, front desk)."""
    _staff_change(number, channel, from_, note, opt_out=True)


@consent_app.command("opt-in")
def staff_opt_in(
    number: Annotated[str, typer.Argument(help="The phone number, E.164.")],
    channel: ChannelOption = "all",
    from_: Annotated[str | None, typer.Option("--from", help="The bot number (default TWILIO_PHONE_NUMBER).")] = None,
    note: Annotated[str, typer.Option(help="Where the consent was given, for the ledger.")] = "",
) -> None:
    """Record consent a patient gave outside the chat (a signed form at the front desk)."""
    _staff_change(number, channel, from_, note, opt_out=False)


@consent_app.command("help-text")
def help_text() -> None:
    """Print the business's SMS HELP answer, to paste into Twilio's Advanced Opt-Out HELP text."""
    from bot.business import load_business
    from bot.cli import dev_settings
    from bot.templates import ReplyTemplates

    settings = dev_settings()
    try:
        business = load_business(Path(settings.intents_dir) / "business.yaml")
        text = ReplyTemplates(Path(settings.prompts_dir)).render("compliance_help", "sms", business=business)
    except BotError as exc:
        raise _fail(str(exc)) from None
    typer.echo(text)

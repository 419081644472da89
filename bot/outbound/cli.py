"""The outbound commands: ``bot worker``, ``bot broadcast``, ``bot broadcast-status``.

Plain functions with typer annotations; ``bot/cli.py`` registers them::

    app.command()(worker)
    app.command()(broadcast)
    app.command("broadcast-status")(broadcast_status)

Example::

    bot worker                      # run the job queue (needs REDIS_URL)
    bot worker --check              # exit 0 when this host's worker is alive
    bot broadcast spring.csv --template welcome_back --campaign spring --rate 1
    bot broadcast-status spring
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.errors import BotError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bot.engine import TurnContext
    from bot.messages import TurnResult
    from bot.outbound.broadcast import QueueReport, Recipient
    from bot.outbound.campaigns import CampaignSummary
    from bot.runtime import Runtime
    from bot.settings import Settings

# No progress for this long while waiting: the worker is probably not running.
STALL_HINT_SECONDS = 15.0


def _settings() -> Settings:
    # Imported here: bot.cli registers these functions, so a top-level import would be circular.
    from bot.cli import settings_or_exit

    return settings_or_exit()


def worker(
    check: Annotated[bool, typer.Option("--check", help="Exit 0 if this host's worker is alive, 1 if not.")] = False,
) -> None:
    """Run the job worker: REST sends, late turns, reminders, broadcasts (needs REDIS_URL)."""
    from bot.observability import configure_logging
    from bot.worker import check_health, run_worker

    settings = _settings()
    if check:
        raise typer.Exit(asyncio.run(check_health(settings)))
    if not settings.redis_url:
        typer.echo("error: bot worker needs REDIS_URL (the job queue lives in Redis)", err=True)
        raise typer.Exit(2)
    configure_logging(settings.log_level, json_logs=settings.log_json)
    # arq's own INFO lines print job arguments (numbers, bodies): configure_logging
    # keeps it (like every library) at warnings, as JSON lines.
    run_worker(settings)


def broadcast(
    file: Annotated[Path, typer.Argument(help="Recipients: CSV with a header, or JSON.", exists=True,
                                         dir_okay=False, readable=True)],
    template: Annotated[str, typer.Option("--template", help="Content template name (intents/templates.yaml).")],
    campaign: Annotated[str | None, typer.Option(
        help="Campaign id; the same id never sends twice to one recipient. Default: from the file.")] = None,
    rate: Annotated[float | None, typer.Option(
        help="Messages per second (default BROADCAST_RATE_PER_SECOND).")] = None,
    from_: Annotated[str | None, typer.Option(
        "--from", help="The sending number (default TWILIO_PHONE_NUMBER).")] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the sends and print the summary.")] = True,
) -> None:
    """Send a content template to every recipient in FILE, throttled, once per recipient."""
    from bot.outbound.broadcast import default_campaign, load_recipients
    from bot.outbound.service import load_content_templates

    settings = _settings()
    bot = (from_ or settings.twilio_phone_number or "").removeprefix("whatsapp:").strip()
    if not bot:
        typer.echo("error: no sending number: pass --from or set TWILIO_PHONE_NUMBER", err=True)
        raise typer.Exit(2)
    try:
        recipients = load_recipients(file)
    except BotError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    try:
        load_content_templates(settings).get(template)  # a typo fails before anything is built
    except BotError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if rate is not None and rate <= 0:
        typer.echo("error: --rate must be more than 0 messages per second", err=True)
        raise typer.Exit(2)
    campaign = campaign or default_campaign(file, template)
    pace = rate or settings.broadcast_rate_per_second
    try:
        asyncio.run(_broadcast(settings, recipients, template=template, campaign=campaign, rate=pace, bot=bot,
                               wait=wait))
    except BotError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


async def _broadcast(settings: Settings, recipients: Sequence[Recipient], *, template: str, campaign: str,
                     rate: float, bot: str, wait: bool) -> None:
    from rich.progress import Progress

    from bot.outbound.broadcast import queue_broadcast
    from bot.outbound.outbox import InlineOutbox
    from bot.runtime import build_runtime

    # This process only sends: no turns, so no Brain to build (it trains a classifier).
    runtime = build_runtime(settings, handler=_NoTurns())
    await runtime.open()
    try:
        outbound = runtime.require_outbound()
        with Progress(transient=False) as progress:
            task = progress.add_task(f"queuing {campaign}", total=len(recipients))
            report = await queue_broadcast(outbound, recipients, template=template, campaign=campaign, rate=rate,
                                           bot=bot, progress=lambda n: progress.advance(task, n))
        _print_report(report, rate)
        if not wait or report.held:
            if report.held and isinstance(outbound.outbox, InlineOutbox):
                typer.echo("note: without REDIS_URL nothing keeps held messages once this command ends; "
                           "use Redis and `bot worker`")
            typer.echo(f"queued; `bot broadcast-status {campaign}` shows progress")
            return
        if isinstance(outbound.outbox, InlineOutbox):
            await outbound.outbox.drain()  # no Redis: this process sends
        summary = await _wait_for(runtime, campaign)
        typer.echo("\n".join(summary.lines()))
    finally:
        await runtime.aclose()


class _NoTurns:
    """The turn handler of a process that runs no turns."""

    template_context: dict[str, object] = {}  # noqa: RUF012 - read-only, as the engine expects

    async def handle(self, ctx: TurnContext) -> TurnResult:
        raise RuntimeError("bot broadcast runs no conversation turns")


def _print_report(report: QueueReport, rate: float) -> None:
    parts = [f"queued {report.queued} of {report.recipients} recipients"]
    if report.already_sent:
        parts.append(f"{report.already_sent} already sent")
    if report.skipped:
        parts.append("skipped " + ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items())))
    if report.duplicates_in_file:
        parts.append(f"{report.duplicates_in_file} duplicate rows ignored")
    typer.echo("; ".join(parts))
    now = report.queued - sum(report.held.values())
    if now:
        typer.echo(f"at {rate:g}/s this takes about {now / rate:.0f} s")
    for release, count in sorted(report.held.items()):
        typer.echo(f"held for quiet hours: {count} until {release}")


async def _wait_for(runtime: Runtime, campaign: str) -> CampaignSummary:
    from rich.progress import Progress

    campaigns = runtime.require_outbound().campaigns
    summary = await campaigns.summary(campaign)
    last_done, last_change = summary.done, time.monotonic()
    hinted = False
    with Progress() as progress:
        task = progress.add_task("sending", total=summary.total, completed=summary.done)
        while summary.pending:
            await asyncio.sleep(0.5)
            summary = await campaigns.summary(campaign)
            progress.update(task, completed=summary.done)
            if summary.done != last_done:
                last_done, last_change = summary.done, time.monotonic()
            elif not hinted and time.monotonic() - last_change > STALL_HINT_SECONDS:
                progress.console.print("no progress: is `bot worker` running? (Ctrl-C stops waiting; "
                                       "the jobs stay queued)")
                hinted = True
    return summary


def broadcast_status(
    campaign: Annotated[str, typer.Argument(help="The campaign id `bot broadcast` printed.")],
) -> None:
    """Show a campaign's progress: sent, skipped by reason, failed by error code, delivery."""
    settings = _settings()
    try:
        lines = asyncio.run(_status(settings, campaign))
    except BotError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if lines is None:
        typer.echo(f"error: no campaign {campaign!r}", err=True)
        raise typer.Exit(1)
    typer.echo("\n".join(lines))


async def _status(settings: Settings, campaign: str) -> list[str] | None:
    from bot.outbound.campaigns import Campaigns
    from bot.runtime import build_store
    from bot.storage.stores import Stores

    store = build_store(settings)
    try:
        campaigns = Campaigns(Stores.beside(store).ledger)
        if not await campaigns.exists(campaign):
            return None
        return (await campaigns.summary(campaign)).lines()
    finally:
        await store.close()

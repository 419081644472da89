"""The going-live commands: ``bot connect`` and ``bot doctor`` (registered by ``bot/cli.py``).

Example::

    bot connect --number +15005550006 --url https://bot.example.com
    bot connect --number +15005550006 --check
    bot connect --messaging-service MG... --number +15005550006
    bot doctor
"""

from __future__ import annotations

from typing import Annotated

import typer

from bot.errors import BotError


def connect_command(
    number: Annotated[str | None, typer.Option(help="The Twilio number, E.164 (+1...).", metavar="NUMBER")] = None,
    url: Annotated[str | None, typer.Option(
        help="The bot's public base URL (default PUBLIC_BASE_URL).", metavar="URL")] = None,
    messaging_service: Annotated[str | None, typer.Option(
        "--messaging-service", help="Set this Messaging Service's inbound URL instead (MG...).", metavar="SID")] = None,
    fallback_url: Annotated[str | None, typer.Option(
        "--fallback-url", help="Where Twilio goes when the bot fails (e.g. a TwiML Bin).", metavar="URL")] = None,
    voice: Annotated[bool | None, typer.Option(
        "--voice/--no-voice", help="Also set the voice URLs (default: when the bot serves voice).",
        show_default=False)] = None,
    check: Annotated[bool, typer.Option("--check", help="Only read and report mismatches (exit 1 if any).")] = False,
) -> None:
    """Point a Twilio number (or Messaging Service) at the bot, or --check it."""
    from bot.cli import serves_voice, settings_or_exit
    from bot.golive.connect import ConnectRequest, connect
    from bot.golive.twilio_admin import admin_client
    from bot.golive.urls import WebhookUrls

    settings = settings_or_exit()
    if not number and not messaging_service:
        typer.echo("error: pass --number +1... (and/or --messaging-service MG...)", err=True)
        raise typer.Exit(2)
    base = url or settings.public_base_url
    if not base:
        typer.echo("error: no public URL: pass --url https://... or set PUBLIC_BASE_URL", err=True)
        raise typer.Exit(2)
    try:
        urls = WebhookUrls.from_base(base)
        request = ConnectRequest(urls=urls, number=number, messaging_service=messaging_service,
                                 fallback_url=fallback_url, voice=serves_voice() if voice is None else voice)
        report = connect(admin_client(settings), request, check=check)
    except BotError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in report.lines():
        typer.echo(line)
    if url and settings.public_base_url and urls.base != settings.public_base_url:
        typer.echo(f"note      PUBLIC_BASE_URL is {settings.public_base_url}: set it to {urls.base} too, "
                   "or every signature check fails")
    raise typer.Exit(0 if report.ok else 1)


def doctor_command() -> None:
    """Check settings, Redis, the signature URL, the model and content templates; one line each."""
    from bot.golive.doctor import DoctorInputs, exit_status, run_doctor

    findings = run_doctor(DoctorInputs.from_env())
    for finding in findings:
        typer.echo(finding.line())
    raise typer.Exit(exit_status(findings))

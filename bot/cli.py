"""The ``bot`` command line.

Commands are registered explicitly below; each one builds what it needs from
:class:`~bot.settings.Settings`.

Example::

    bot serve --port 8000
    bot chat --whatsapp
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from bot.errors import BotError, ConfigError
from bot.settings import Settings, load_settings

app = typer.Typer(
    name="bot",
    help="Conversational SMS & WhatsApp bot server on Twilio.",
    no_args_is_help=True,
    add_completion=False,
)

DEV_ACCOUNT_SID = "AC" + "d" * 32
DEV_AUTH_TOKEN = "dev-auth-token"  # noqa: S105 - a public development default, not a secret
DEV_BOT_NUMBER = "+15005550006"
DEV_USER_NUMBER = "+14155550100"


def settings_or_exit(**overrides: object) -> Settings:
    """Load settings or print the one clear message and exit with status 2."""
    try:
        return load_settings(**overrides)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def dev_credentials() -> dict[str, object]:
    """The public development credentials, for each one the environment leaves unset.

    What lets the local tools (chat, dev, replay) run without a Twilio account.

    Example::

        load_settings(environment="development", **dev_credentials())
    """
    values: dict[str, object] = {}
    if not os.environ.get("TWILIO_ACCOUNT_SID"):
        values["twilio_account_sid"] = DEV_ACCOUNT_SID
    if not os.environ.get("TWILIO_AUTH_TOKEN"):
        values["twilio_auth_token"] = DEV_AUTH_TOKEN
    return values


def dev_settings(**overrides: object) -> Settings:
    """Settings for local tools (chat, replay, dev): no Twilio account needed.

    Real values from the environment or ``.env`` still win.
    """
    return settings_or_exit(**{"environment": "development", **dev_credentials(), **overrides})


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "0.0.0.0",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the production server (uvicorn). Needs TWILIO_* settings."""
    import uvicorn

    from bot.observability import configure_logging
    from webhooks.app import create_app, settle_heap

    settings = settings_or_exit()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    if workers > 1:
        # Each worker builds its own app from the environment.
        uvicorn.run(
            "webhooks.app:app_from_env", factory=True, host=host, port=port, workers=workers,
            proxy_headers=True, access_log=False, log_config=None,
        )
        return
    server_app = create_app(settings)
    settle_heap()
    # log_config=None: uvicorn keeps the JSON handler configure_logging installed.
    uvicorn.run(server_app, host=host, port=port, proxy_headers=True, access_log=False, log_config=None)


@app.command()
def chat(
    whatsapp: Annotated[bool, typer.Option("--whatsapp", help="Use the WhatsApp channel.")] = False,
    user: Annotated[str, typer.Option(help="Your (pretend) phone number.")] = DEV_USER_NUMBER,
    name: Annotated[str, typer.Option(help="WhatsApp profile name.")] = "Dev",
    record: Annotated[
        Path | None,
        typer.Option(help="Write the session to FILE as a transcript (bot replay FILE replays it).",
                     metavar="FILE"),
    ] = None,
    now: Annotated[
        str | None,
        typer.Option(help="Freeze the clock at ISO_TIME with a UTC offset, e.g. 2026-03-07T18:00:00-05:00.",
                     metavar="ISO_TIME"),
    ] = None,
    voice: Annotated[bool, typer.Option("--voice", help="Call the bot instead: lines are speech, #1 presses 1.")]
    = False,
) -> None:
    """Talk to the bot from the terminal through the real signed webhook path."""
    from devtools.chat import run_chat

    frozen = _iso_time(now) if now is not None else None
    settings = dev_settings()
    asyncio.run(
        run_chat(settings, whatsapp=whatsapp, user=user, bot=DEV_BOT_NUMBER, profile_name=name,
                 lines=sys.stdin, interactive=sys.stdin.isatty(), record=record, now=frozen,
                 voice=voice)
    )


def _iso_time(value: str) -> datetime:
    """``--now``: an ISO-8601 time with a UTC offset (``Z`` or ``-05:00``); else a clear error."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not an ISO-8601 time; write e.g. 2026-03-07T18:00:00-05:00", param_hint="--now"
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise typer.BadParameter(
            f"{value!r} has no UTC offset; add one, e.g. {value}-05:00 or {value}Z", param_hint="--now"
        )
    return moment


@app.command()
def classify(
    language: Annotated[
        str, typer.Option(help="A language of business.yaml (en, es), or auto: each line's own (docs/languages.md).")
    ] = "auto",
) -> None:
    """Classify lines from stdin: one JSON object per line (text, intent, confidence, entities).

    With more than one language in business.yaml each line also says the
    ``language`` it was read in: ``auto`` detects it per line as the bot
    does for a conversation's first message (English when not sure).
    """
    import json
    from pathlib import Path

    from bot.business import load_business
    from bot.languages.choose import FIRST_FLOOR
    from bot.languages.detect import LanguageDetector
    from bot.languages.nlu import language_nlu
    from bot.nlu.understand import NLU

    settings = dev_settings()
    intents_dir = Path(settings.intents_dir)
    business = load_business(intents_dir / "business.yaml")
    if language != "auto" and language not in business.languages:
        raise typer.BadParameter(f"{language!r} is not in languages {list(business.languages)} of business.yaml",
                                 param_hint="--language")
    nlus = {code: NLU.from_dir(intents_dir, business) if code == business.languages[0]
            else language_nlu(intents_dir, code) for code in business.languages
            if language in ("auto", code)}
    detector = LanguageDetector(business.languages) if language == "auto" and len(nlus) > 1 else None
    for line in sys.stdin:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        code = language if language != "auto" else business.languages[0]
        if detector is not None:
            code = detector.detect(text, floor=FIRST_FLOOR) or code
        u = nlus[code].classify(text)
        out = {"text": text, "intent": u.intent, "confidence": round(u.confidence, 4), "entities": dict(u.entities)}
        if len(business.languages) > 1:
            out["language"] = code
        print(json.dumps(out, ensure_ascii=False), flush=True)


@app.command("replay")
def replay(
    paths: Annotated[
        list[Path], typer.Argument(help="Transcript files or folders.", show_default=False, metavar="PATH")
    ],
    url: Annotated[
        str | None, typer.Option(help="Replay against a running server instead of in-process.", metavar="URL")
    ] = None,
    k: Annotated[
        str | None,
        typer.Option("-k", help="Only conversations whose name or file name contains PATTERN.", metavar="PATTERN"),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write a machine-readable report to FILE.", metavar="FILE")
    ] = None,
) -> None:
    """Replay transcripts through the signed webhook path; exit status 1 when any fails."""
    from devtools.replay.cli import replay_command

    raise typer.Exit(replay_command(paths, url=url, k=k, json_path=json_path, settings=dev_settings()))


@app.command("dev")
def dev(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the dev phone in a browser.")
    ] = False,
) -> None:
    """Run the bot with a local Twilio simulator and a browser dev phone (no account needed)."""
    # Lazily: `bot serve` and `bot worker` must not load the dev tools (docs/architecture.md).
    from devtools.devserver import dev as run_dev

    run_dev(host, port, open_browser)


@app.command("eval")
def eval_command(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="Transcript files or folders (default: tests/transcripts).", show_default=False,
                       metavar="PATH"),
    ] = None,
    k: Annotated[
        str | None,
        typer.Option("-k", help="Only conversations whose name or file name contains PATTERN.", metavar="PATTERN"),
    ] = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Also write the figures to FILE as JSON.", metavar="FILE")
    ] = None,
) -> None:
    """Score the bot on a labelled conversation set: intent and slot accuracy, model share, fallbacks, segments."""
    import json

    from bot.errors import TranscriptError
    from devtools.replay.evaluate import evaluate

    settings = dev_settings()
    try:
        report = asyncio.run(evaluate(paths or [Path("tests/transcripts")], settings=settings, k=k))
    except TranscriptError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    print(report.text())
    if json_path is not None:
        json_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")


def serves_voice() -> bool:
    """Whether this version of the bot answers calls (its app has a /twilio/voice route); for `bot connect`."""
    from bot.storage import MemoryStore
    from webhooks.app import create_app

    app = create_app(dev_settings(), store=MemoryStore())
    return any(getattr(route, "path", "") == "/twilio/voice" for route in app.routes)


def _register_optional_commands() -> None:
    # Explicit registration of the feature commands (no discovery).
    from bot.compliance.cli import consent_app
    from bot.confirmations.cli import appointments_app
    from bot.golive.cli import connect_command, doctor_command
    from bot.outbound.cli import broadcast, broadcast_status, worker

    app.command("worker")(worker)
    app.command("broadcast")(broadcast)
    app.command("broadcast-status")(broadcast_status)
    app.command("connect")(connect_command)
    app.command("doctor")(doctor_command)
    app.add_typer(consent_app, name="consent")
    app.add_typer(appointments_app, name="appointments")


_register_optional_commands()


def main() -> None:
    """The ``bot`` command. Our own errors end it with one clear line, not a traceback."""
    try:
        app()
    except BotError as exc:
        typer.echo(f"bot: {exc}", err=True)
        raise SystemExit(2) from None
    except ModuleNotFoundError as exc:
        # The production image ships bot/ and webhooks/ only; dev, chat and replay live in devtools/.
        if not (exc.name or "").startswith("devtools"):
            raise
        typer.echo("bot: this command needs the dev tools (the devtools package), which this installation "
                   "does not include; run it from a source checkout", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":  # pragma: no cover
    main()

"""``bot replay PATH... [--url URL] [-k PATTERN] [--json FILE]``.

Prints one line per conversation, in the order the files list them::

    PASS greeting over SMS (tests/transcripts/spine/greeting.yaml:2)
    FAIL booking (tests/transcripts/brain/booking.yaml:1)
        tests/transcripts/brain/booking.yaml:9: "booking" failed at step 2 of 5
          step 2: user: "tomorrow at 3"
          - expected reply containing "booked", but the bot sent: "Which service?"
          ...
    SKIP reminders: step 3 needs the frozen clock (advance: 23h); a running server cannot replay it (--url)
    1 passed, 1 failed, 1 skipped

The last line is exactly ``N passed, N failed`` (``, N skipped`` when any).
Exit status: 0 when nothing failed, 1 when a conversation failed, 2 when
replay could not start (an invalid transcript, a path that does not exist,
``-k`` matching nothing).

Example::

    code = replay_command(["tests/transcripts"], k="opt out", json_path=Path("replay.json"))
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from bot.errors import BotError, TranscriptError
from bot.settings import Settings
from devtools.replay.config import DEFAULT_CONCURRENCY, replay_settings
from devtools.replay.report import ConversationResult
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import load_transcripts, select

__all__ = ["replay_command"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def replay_command(
    paths: Sequence[str | Path],
    *,
    url: str | None = None,
    k: str | None = None,
    json_path: Path | None = None,
    settings: Settings | None = None,
    public_url: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Replay the transcripts under ``paths`` and print the report; returns the exit status.

    ``url`` replays against a running server (signing with the settings'
    ``TWILIO_AUTH_TOKEN`` over ``public_url``, default ``url``); ``k`` selects
    conversations by name or file name; ``json_path`` receives the
    machine-readable report.

    Example::

        raise SystemExit(replay_command(["tests/transcripts"], url="http://127.0.0.1:8000"))
    """
    out = out or sys.stdout
    err = err or sys.stderr
    if not paths:
        print("error: give at least one transcript file or folder", file=err)
        return EXIT_USAGE
    try:
        transcripts = load_transcripts(paths)
    except TranscriptError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    selected = select(transcripts, k)
    if not selected:
        print(f"error: no conversation matches -k {k!r} ({len(transcripts)} in the given paths)", file=err)
        return EXIT_USAGE

    try:
        runner = ReplayRunner(
            settings or replay_settings(), url=url, public_url=public_url, concurrency=concurrency
        )
    except (BotError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE

    def show(result: ConversationResult) -> None:
        print(result.line(), file=out)
        if result.failure:
            print(_indent(result.failure), file=out)
        out.flush()

    report = asyncio.run(runner.run(selected, on_result=show))
    print(report.summary(), file=out)
    if json_path is not None:
        document = {
            **report.to_dict(),
            "paths": [str(p) for p in paths],
            "pattern": k,
            "url": url,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return EXIT_OK if report.ok else EXIT_FAILED


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" if line else line for line in text.splitlines())

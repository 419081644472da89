"""How fast transcripts replay in-process, and how much of it is the webhook itself.

Replays the project's own transcripts (``tests/transcripts/**``) with the same
runner as ``bot replay`` (memory store, concurrency 8) for a number of rounds
after one warm-up round (which builds the bot and trains its classifier), and
reports:

- steps per second over the measured rounds (target: at least 500, issue 11), and
  steps per CPU second of this process (less moved by a busy machine);
- the median time of the webhook request itself per step (the HTTP POST to
  the in-process app), next to the median whole step, so the replay
  overhead (settling, collecting replies, checking) is visible. These two
  come from an extra round run one conversation at a time: with several at
  once, a request's time would include the other conversations' work;
- the time per conversation spent outside its steps (building its app, store,
  clock and local Twilio API).

After the warm-up the heap is settled (``gc.freeze``), as ``bot serve`` does
after start-up.

A transcript that fails makes the benchmark fail: a green suite is timed.

Usage::

    .venv/bin/python -m bench.replay [--rounds 5] [--json out.json] [PATH ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devtools.replay.config import DEFAULT_CONCURRENCY, replay_settings
from devtools.replay.report import ReplayReport
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import load_transcripts
from webhooks.app import settle_heap

ROOT = Path(__file__).resolve().parents[1]
TARGET_STEPS_PER_SECOND = 500  # issue 11: "Replay speed (bench) stays >= 500 steps/s"


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


async def measure(paths: list[Path], *, rounds: int, concurrency: int) -> dict[str, Any]:
    """Warm up once, then replay ``rounds`` times; the numbers of the measured rounds."""
    transcripts = load_transcripts(paths)
    runner = ReplayRunner(replay_settings(redis_url=None), concurrency=concurrency)

    started = time.perf_counter()
    warm = await runner.run(transcripts)
    warm_seconds = time.perf_counter() - started
    _require_green(warm)
    # As a server process does after start-up (webhooks.app.settle_heap): the bot built by the
    # warm-up is long-lived, so full collections need not walk it (each took ~0.2 s of a round).
    settle_heap()

    reports: list[ReplayReport] = []
    started = time.perf_counter()
    cpu_started = time.process_time()
    for _ in range(rounds):
        report = await runner.run(transcripts)
        _require_green(report)
        reports.append(report)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started

    steps = [s for r in reports for c in r.results for s in c.steps if s.status in ("passed", "failed")]
    runner.concurrency = 1
    alone = await runner.run(transcripts)
    _require_green(alone)
    alone_steps = [s for c in alone.results for s in c.steps if s.status in ("passed", "failed")]
    webhook = [s.webhook_seconds for s in alone_steps if s.webhook_seconds is not None]
    per_step = [s.seconds for s in alone_steps]
    outside = [c.seconds - sum(s.seconds for s in c.steps) for c in alone.results]
    builds = _app_builds(runner)
    count = len(steps)
    return {
        "transcripts": [str(p) for p in paths],
        "conversations": len(transcripts),
        "steps_per_round": count // rounds if rounds else 0,
        "rounds": rounds,
        "concurrency": concurrency,
        "steps_per_second": round(count / elapsed, 1) if elapsed else None,
        "target_steps_per_second": TARGET_STEPS_PER_SECOND,
        # The replay is one thread: on an idle machine steps/s comes close to this; on a
        # busy shared one it moves much less than steps/s does.
        "steps_per_cpu_second": round(count / cpu, 1) if cpu else None,
        "webhook_ms_median": _ms(statistics.median(webhook)) if webhook else None,
        "webhook_ms_p95": _ms(_percentile(webhook, 0.95)) if webhook else None,
        "step_ms_median": _ms(statistics.median(per_step)) if per_step else None,
        "conversation_setup_ms_median": _ms(statistics.median(outside)) if outside else None,
        "create_app_ms_median": _ms(statistics.median(builds)),
        "warmup_seconds": round(warm_seconds, 3),
        "measured_seconds": round(elapsed, 3),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }


def _app_builds(runner: ReplayRunner, count: int = 10) -> list[float]:
    """How long ``create_app`` alone takes (the bot shared, as in replay): most of a conversation's setup."""
    from bot.clock import FrozenClock
    from bot.storage import MemoryStore
    from webhooks.app import create_app

    handler = runner.shared_handler(has_model=False)
    times = []
    for _ in range(count):
        started = time.perf_counter()
        create_app(runner.settings.model_copy(update={"redis_url": None}), store=MemoryStore(),
                   clock=FrozenClock(), handler=handler, twilio=object())
        times.append(time.perf_counter() - started)
    return times


def _require_green(report: ReplayReport) -> None:
    if report.failed:
        failures = "\n".join(r.failure or r.line() for r in report.results if r.status == "failed")
        raise SystemExit(f"replay benchmark: transcripts fail; fix them first\n{failures}")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, default=[ROOT / "tests" / "transcripts"])
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds after the warm-up (default 5)")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)

    logging.getLogger().addHandler(logging.NullHandler())  # the app's start-up warnings, once per conversation
    result = asyncio.run(measure(args.paths, rounds=args.rounds, concurrency=args.concurrency))

    print(
        f"{result['conversations']} conversations, {result['steps_per_round']} steps per round, "
        f"{result['rounds']} rounds (concurrency {result['concurrency']})"
    )
    print(f"replay:        {result['steps_per_second']} steps/s (target >= {TARGET_STEPS_PER_SECOND}); "
          f"{result['steps_per_cpu_second']} steps per CPU second")
    print(f"webhook:       {result['webhook_ms_median']} ms median per step (p95 {result['webhook_ms_p95']} ms)")
    print(f"whole step:    {result['step_ms_median']} ms median (webhook + settling + checks)")
    print(
        f"setup:         {result['conversation_setup_ms_median']} ms median per conversation (its own app and "
        f"Twilio API), of which create_app {result['create_app_ms_median']} ms"
    )
    print(f"warm-up round: {result['warmup_seconds']} s (builds the bot once)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

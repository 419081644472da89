"""Conversation quality, offline: ``bot eval`` over the project's transcripts.

The figures users pick a model with (see docs/brain.md, "Measuring it:
bot eval"), tracked here for the offline pipeline (rules, classifier, FAQ,
the scripted model of ``llm:`` transcripts): intent and slot accuracy, the
share of turns that needed the model, the fallback rate and SMS segments per
turn. ``LLM_MODEL`` is ignored here: a bench run never calls a real model.

Usage::

    .venv/bin/python -m bench.eval [--json bench/results/eval.json] [--md bench/results/eval.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]


def run(paths: list[str] | None = None) -> dict[str, Any]:
    """The offline figures as a dict (``EvalReport.to_dict``)."""
    os.environ.pop("LLM_MODEL", None)
    from bot.cli import dev_settings
    from devtools.replay.evaluate import evaluate

    settings = dev_settings(llm_model=None)
    report = asyncio.run(evaluate(paths or [str(ROOT / "tests" / "transcripts")], settings=settings))
    return {"status": "ok", **report.to_dict(), "text": report.text()}


def markdown(figures: dict[str, Any]) -> str:
    """A short report for bench/results/eval.md."""

    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value * 100:.1f}%"

    return (
        "# Conversation quality (offline): `bot eval`\n\n"
        "`python -m bench.eval` over `tests/transcripts` (rules, classifier, FAQ, and the scripted model\n"
        "for transcripts with `llm:`; no real model).\n\n"
        "| figure | value |\n| --- | --- |\n"
        f"| conversations (passing) | {figures['conversations']} ({figures['conversations_passed']}) |\n"
        f"| turns | {figures['turns']} |\n"
        f"| intent accuracy | {pct(figures['intent_accuracy'])} of {figures['intent_labelled']} labelled turns |\n"
        f"| slot accuracy | {pct(figures['slot_accuracy'])} of {figures['slots_labelled']} labelled slots |\n"
        f"| turns that needed the model | {pct(figures['model_turn_share'])} |\n"
        f"| fallback rate | {pct(figures['fallback_rate'])} |\n"
        f"| SMS segments per turn | {figures['sms_segments_per_turn']} over {figures['sms_turns']} SMS turns |\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON")
    parser.add_argument("--md", type=Path, help="write a markdown report")
    parser.add_argument("paths", nargs="*", help="transcript files or folders (default: tests/transcripts)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    figures = run(args.paths or None)
    print(figures["text"])
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in figures.items() if k != "text"}, indent=2) + "\n")
    if args.md:
        args.md.write_text(markdown(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Summarise a py-spy speedscope profile: where the server's CPU goes.

``bench/run --profile`` records the project server with py-spy during the
highest-concurrency run; this turns the recording into the shares quoted in
bench/README.md: the top functions by inclusive and by self time, and the
share of each area (our packages, the Twilio SDK, Starlette/FastAPI, redis-py,
uvicorn, Jinja2, logging ...).

Usage::

    .venv/bin/python -m bench.profile /tmp/project-c50.speedscope.json
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

AREAS = [
    ("bot/storage", "bot.storage"), ("bot/nlu", "bot.nlu"), ("bot/flows", "bot.flows"),
    ("bot/sms", "bot.sms"), ("bot/", "bot (other)"), ("webhooks/", "webhooks"),
    ("twilio/", "twilio SDK"), ("fastapi/", "fastapi"), ("starlette/", "starlette"),
    ("redis/", "redis-py"), ("uvicorn/", "uvicorn"), ("jinja2/", "jinja2"), ("sklearn/", "scikit-learn"),
    ("dateparser/", "dateparser"), ("prometheus_client/", "prometheus"), ("logging/", "logging"),
    ("json/", "json"), ("asyncio/", "asyncio"), ("xml/", "xml"), ("pydantic", "pydantic"),
]


# Stages of a request, matched on the innermost frame of our own code (bot/,
# webhooks/) in each sample; samples with none of our frames go to the
# innermost framework frame instead.
OUR_STAGES = [
    ("webhooks/signature.py", None, "signature check (SDK HMAC)"),
    ("webhooks/forms.py", None, "form read + parse"),
    ("webhooks/inbound.py", None, "parse_inbound"),
    ("webhooks/twiml.py", None, "TwiML render (SDK builder)"),
    ("bot/outgoing.py", None, "reply finishing (GSM-7, segments)"),
    ("bot/sms/", None, "reply finishing (GSM-7, segments)"),
    ("bot/storage/redis.py", "begin_turn", "store: begin_turn (Redis)"),
    ("bot/storage/redis.py", "commit_turn", "store: commit_turn (Redis)"),
    ("bot/storage/redis.py", None, "store: other calls (Redis)"),
    ("bot/appointments.py", None, "appointment book (Redis)"),
    ("bot/storage/base.py", None, "state JSON (de)serialisation"),
    ("bot/nlu/slots.py", None, "NLU: slot extraction (dateparser)"),
    ("bot/nlu/classifier.py", None, "NLU: classifier (scikit-learn)"),
    ("bot/nlu/", None, "NLU: rules + normalisation"),
    ("bot/templates.py", None, "reply templates (Jinja2)"),
    ("bot/flows/", None, "flows"),
    ("bot/business.py", None, "business data helpers"),
    ("bot/hours.py", None, "business data helpers"),
    ("bot/brain/", None, "brain (other)"),
    ("bot/compliance/", None, "compliance"),
    ("bot/observability.py", None, "logging (JSON formatter)"),
    ("bot/engine.py", "_keep_lease", "engine: lease heartbeat task"),
    ("bot/engine.py", None, "engine (other: logging, history, tasks)"),
    ("webhooks/app.py", None, "metrics middleware"),
    ("webhooks/messages.py", None, "webhook handler (other)"),
    ("webhooks/", None, "webhooks (other)"),
    ("bench/", None, "bench app"),
]
# Frameworks that call our code (libraries our code calls are skipped).
FRAMEWORK_STAGES = [
    ("/anyio/", "framework: sync dependency run in a worker thread (anyio)"),
    ("starlette/concurrency.py", "framework: sync dependency run in a worker thread (anyio)"),
    ("/threading.py", "framework: sync dependency run in a worker thread (anyio)"),
    ("/queue.py", "framework: sync dependency run in a worker thread (anyio)"),
    ("fastapi/dependencies/", "framework: FastAPI dependency solving"),
    ("/fastapi/", "framework: FastAPI/Starlette routing + responses"),
    ("/starlette/", "framework: FastAPI/Starlette routing + responses"),
    ("/uvicorn/protocols/", "framework: uvicorn HTTP"),
    ("/uvicorn/middleware/", "framework: uvicorn HTTP"),
]


def _stage(stack: list[int], frames: list[dict[str, Any]]) -> str:
    # Walk from the innermost frame outwards, skipping the libraries our code
    # calls (redis-py, dateparser, Jinja2 ...): the first frame that is ours
    # or the web framework's (which calls us) names the stage.
    for idx in reversed(stack):
        frame = frames[idx]
        file = frame.get("file") or ""
        if "/site-packages/" not in file and "/lib/python3" not in file:
            for needle, function, label in OUR_STAGES:
                if needle in file and (function is None or frame.get("name") == function):
                    return label
        for needle, label in FRAMEWORK_STAGES:
            if needle in file:
                return label
    return "framework: asyncio event loop"


def _area(file: str) -> str:
    for needle, label in AREAS:
        if needle in file:
            return label
    return "other"


def _label(frame: dict[str, Any]) -> str:
    file = frame.get("file") or ""
    for marker in ("/site-packages/", "/work/main/", "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{frame.get('name')} ({file}:{frame.get('line')})"


def summarize_speedscope(path: Path, top: int = 15) -> dict[str, Any]:
    data = json.loads(path.read_text())
    frames = data["shared"]["frames"]
    inclusive: Counter[int] = Counter()
    self_: Counter[int] = Counter()
    areas: Counter[str] = Counter()
    stages: Counter[str] = Counter()
    total = 0.0
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            total += weight
            for idx in set(stack):
                inclusive[idx] += weight
            if stack:
                self_[stack[-1]] += weight
                areas[_area(frames[stack[-1]].get("file") or "")] += weight
            stages[_stage(stack, frames)] += weight
    if not total:
        return {"samples": 0}

    def rows(counter: Counter[int]) -> list[dict[str, Any]]:
        return [{"share": round(w / total, 4), "function": _label(frames[i])} for i, w in counter.most_common(top)]

    return {
        "samples": int(total),
        "top_inclusive": rows(inclusive),
        "top_self": rows(self_),
        "by_stage": {k: round(v / total, 4) for k, v in stages.most_common()},
        "self_by_area": {k: round(v / total, 4) for k, v in areas.most_common()},
    }


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    summary = summarize_speedscope(Path(args[0]), top=int(args[1]) if len(args) > 1 else 25)
    print(f"samples: {summary['samples']}")
    for title in ("top_inclusive", "top_self"):
        print(f"\n{title}:")
        for row in summary[title]:
            print(f"  {row['share']:6.1%}  {row['function']}")
    print("\nby stage (innermost frame of our code):")
    for stage, share in summary["by_stage"].items():
        print(f"  {share:6.1%}  {stage}")
    print("\nself time by area:")
    for area, share in summary["self_by_area"].items():
        print(f"  {share:6.1%}  {area}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

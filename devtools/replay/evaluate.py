"""``bot eval``: how well the bot understands a labelled conversation set.

Runs conversations (default: the project's transcripts, ``tests/transcripts``)
through the real pipeline in-process, as ``bot replay`` does, but runs every
step even after one fails, and scores each turn a user sent (``user:`` and
``button:`` steps):

- **intent accuracy**: turns labelled ``intent:`` whose resolved intent matches;
- **slot accuracy**: slot values labelled ``slots:`` (a transcript extension,
  ``slots: {service: cleaning, time: "15:00"}``) the turn read exactly;
- **model turns**: the share of turns that called the model;
- **fallback rate**: the share of turns resolved to ``fallback``;
- **SMS segments per turn**: what the bot's replies on SMS cost, on average;
- **conversations passing**: with every expectation checked.

Offline (no ``LLM_MODEL``) the model is the scripted one: conversations with
``llm:`` entries use them, the others run without a model. With
``LLM_MODEL`` set, that model answers every conversation (the scripts are
ignored) and its calls are measured: latency, tokens, and cost when the
provider reports it (``response_metadata``/``usage`` ``cost``).

Example::

    report = await evaluate(["tests/transcripts"], settings=dev_settings())
    report.intent_accuracy, report.model_share, report.segments_per_turn
    print(report.text())
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler
from langchain_core.outputs import LLMResult

from bot.errors import TranscriptError
from bot.messages import Channel
from bot.nlu.model import build_chat_model
from bot.settings import Settings
from devtools.replay.config import DEFAULT_CONCURRENCY
from devtools.replay.report import ConversationResult
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import ButtonStep, UserStep, load_transcripts, select

__all__ = ["EvalReport", "ModelMeter", "evaluate"]

FALLBACK = "fallback"


class ModelMeter(AsyncCallbackHandler):
    """Measures a LangChain chat model's calls: latency, tokens, reported cost.

    Attach it as a callback (``model.callbacks = [meter]``).
    """

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.input_tokens = 0
        self.output_tokens = 0
        self.cost: float | None = None
        self._started: dict[UUID, float] = {}

    async def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._started[run_id] = time.perf_counter()

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._started.pop(run_id, None)
        if started is not None:
            self.latencies.append(time.perf_counter() - started)
        for generations in response.generations:
            for generation in generations:
                message = getattr(generation, "message", None)
                usage = getattr(message, "usage_metadata", None) or {}
                self.input_tokens += int(usage.get("input_tokens", 0) or 0)
                self.output_tokens += int(usage.get("output_tokens", 0) or 0)
                metadata = getattr(message, "response_metadata", None) or {}
                cost = metadata.get("cost", (metadata.get("token_usage") or {}).get("cost"))
                if isinstance(cost, int | float):
                    self.cost = (self.cost or 0.0) + float(cost)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._started.pop(run_id, None)


@dataclass
class EvalReport:
    """The figures of one evaluation run (see the module docstring)."""

    model: str
    conversations: int = 0
    passed: int = 0
    turns: int = 0
    intent_labelled: int = 0
    intent_correct: int = 0
    slots_labelled: int = 0
    slots_correct: int = 0
    model_turns: int = 0
    fallback_turns: int = 0
    sms_turns: int = 0
    sms_segments: int = 0
    model_calls: int = 0
    latencies: list[float] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    seconds: float = 0.0
    misses: list[str] = field(default_factory=list)

    @staticmethod
    def _share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def intent_accuracy(self) -> float | None:
        return self._share(self.intent_correct, self.intent_labelled)

    @property
    def slot_accuracy(self) -> float | None:
        return self._share(self.slots_correct, self.slots_labelled)

    @property
    def model_share(self) -> float | None:
        return self._share(self.model_turns, self.turns)

    @property
    def fallback_rate(self) -> float | None:
        return self._share(self.fallback_turns, self.turns)

    @property
    def segments_per_turn(self) -> float | None:
        return self.sms_segments / self.sms_turns if self.sms_turns else None

    def add(self, result: ConversationResult) -> None:
        """Score one replayed conversation."""
        self.conversations += 1
        self.passed += result.status == "passed"
        sms = result.transcript.channel is Channel.SMS
        for step in result.steps:
            if not isinstance(step.step, UserStep | ButtonStep) or step.status == "not run":
                continue
            self.turns += 1
            expect = step.step.expect
            if expect is not None and expect.intent is not None:
                self.intent_labelled += 1
                if step.intent == expect.intent:
                    self.intent_correct += 1
                else:
                    self.misses.append(
                        f"{result.transcript.origin}:{step.step.line}: intent {expect.intent}, got {step.intent}"
                    )
            if expect is not None:
                for name, value in expect.slots:
                    self.slots_labelled += 1
                    got = step.entities.get(name)
                    if got is not None and str(got) == value:
                        self.slots_correct += 1
                    else:
                        self.misses.append(f"{result.transcript.origin}:{step.step.line}: {name} {value}, got {got}")
            self.model_turns += bool(step.model_calls)
            self.fallback_turns += step.intent == FALLBACK
            if sms:
                to_user = [m for m in step.sent if Channel.from_address(m.to)[1] == result.transcript.user]
                self.sms_turns += 1
                self.sms_segments += sum(m.segments or 0 for m in to_user)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (shares as fractions 0..1, times in milliseconds)."""

        def rounded(value: float | None, digits: int = 4) -> float | None:
            return None if value is None else round(value, digits)

        latencies = sorted(self.latencies)
        return {
            "model": self.model,
            "conversations": self.conversations,
            "conversations_passed": self.passed,
            "turns": self.turns,
            "intent_accuracy": rounded(self.intent_accuracy),
            "intent_labelled": self.intent_labelled,
            "slot_accuracy": rounded(self.slot_accuracy),
            "slots_labelled": self.slots_labelled,
            "model_turn_share": rounded(self.model_share),
            "fallback_rate": rounded(self.fallback_rate),
            "sms_segments_per_turn": rounded(self.segments_per_turn, 3),
            "sms_turns": self.sms_turns,
            "model_calls": self.model_calls,
            "model_latency_median_ms": rounded(statistics.median(latencies) * 1000, 2) if latencies else None,
            "model_latency_p95_ms": (
                rounded(latencies[int(0.95 * (len(latencies) - 1))] * 1000, 2) if latencies else None
            ),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost": rounded(self.cost, 6),
            "seconds": round(self.seconds, 2),
        }

    def text(self) -> str:
        """The printed report: one figure a line."""

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value * 100:.1f}%"

        data = self.to_dict()
        lines = [
            f"bot eval: {self.conversations} conversations, {self.turns} turns; model: {self.model}",
            f"intent accuracy      {pct(self.intent_accuracy):>7}  ({self.intent_correct}/{self.intent_labelled} "
            "labelled turns)",
            f"slot accuracy        {pct(self.slot_accuracy):>7}  ({self.slots_correct}/{self.slots_labelled} "
            "labelled slots)",
            f"model turns          {pct(self.model_share):>7}  ({self.model_turns}/{self.turns})",
            f"fallback rate        {pct(self.fallback_rate):>7}  ({self.fallback_turns}/{self.turns})",
            "SMS segments/turn    "
            + (f"{self.segments_per_turn:>7.2f}" if self.segments_per_turn is not None else "    n/a")
            + f"  ({self.sms_segments} segments over {self.sms_turns} SMS turns)",
            f"model calls          {self.model_calls:>7}  latency median "
            f"{data['model_latency_median_ms'] if data['model_latency_median_ms'] is not None else 'n/a'} ms, "
            f"p95 {data['model_latency_p95_ms'] if data['model_latency_p95_ms'] is not None else 'n/a'} ms; "
            f"tokens in {self.input_tokens}, out {self.output_tokens}; "
            f"cost {'n/a' if self.cost is None else f'{self.cost:.6f}'}",
            f"conversations passing {self.passed}/{self.conversations}",
        ]
        return "\n".join(lines)


async def evaluate(
    paths: Sequence[str | Path],
    *,
    settings: Settings,
    k: str | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    model: Any = None,
) -> EvalReport:
    """Run the conversations under ``paths`` and score them (see the module docstring).

    ``model``: a LangChain chat model to measure instead of ``LLM_MODEL``'s.

    Raises :class:`~bot.errors.TranscriptError` for an invalid file, a path
    that does not exist or a ``k`` matching nothing.
    """
    every = load_transcripts(paths)
    transcripts = select(every, k)
    if not transcripts:
        raise TranscriptError(f"no conversation matches -k {k!r} ({len(every)} in the given paths)")
    meter = ModelMeter()
    model = model if model is not None else build_chat_model(settings)
    if model is not None:
        model.callbacks = [meter]
    runner = ReplayRunner(settings, concurrency=concurrency, keep_going=True, chat_model=model)
    name = settings.llm_model or (type(model).__name__ if model is not None else None)
    report = EvalReport(model=name or "offline (scripted model for llm: transcripts)")
    started = time.perf_counter()
    results = await runner.run(transcripts)
    report.seconds = time.perf_counter() - started
    for result in results.results:
        report.add(result)
        report.model_calls += sum(len(step.model_calls) for step in result.steps)
    if model is not None:
        # The brain asks the model at most once a turn: a call is a turn that needed it.
        report.model_calls = len(meter.latencies)
        report.model_turns = min(report.model_calls, report.turns)
        report.latencies = meter.latencies
        report.input_tokens, report.output_tokens, report.cost = meter.input_tokens, meter.output_tokens, meter.cost
    return report

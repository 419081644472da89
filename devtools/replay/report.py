"""What a replay found: per step, per conversation, and the whole run (``bot replay --json``).

Example::

    report.summary()                  # '10 passed, 1 failed'
    report.results[0].steps[0].status  # 'passed'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from devtools.replay.expect import SentMessage, StepOutcome
from devtools.replay.scripted_model import ModelCall
from devtools.replay.transcript import (
    Expect,
    Step,
    Transcript,
)

StepStatus: TypeAlias = Literal["passed", "failed", "skipped", "not run"]
Status: TypeAlias = Literal["passed", "failed", "skipped"]




@dataclass(frozen=True, slots=True)
class StepObservation:
    """What one step did, before its expectations are checked.

    ``problems`` are failures found without any expectation (a webhook that
    did not answer 200, a retried delivery that ran the turn again, a model
    script that ran out, an unknown job). ``skip`` is set when the step could
    not run at all (e.g. the app has no ``/twilio/status`` yet).

    Example::

        seen = await conversation.step(UserStep("hi"))
        seen.outcome.sent, seen.outcome.intent, seen.problems, seen.webhook_seconds
    """

    outcome: StepOutcome = field(default_factory=StepOutcome)
    problems: tuple[str, ...] = ()
    skip: str | None = None
    http_status: int | None = None
    webhook_seconds: float | None = None
    turn_ran: bool = False
    model_calls: tuple[ModelCall, ...] = ()
    logs: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step of a replayed conversation; ``index`` is 0-based.

    ``webhook_seconds`` is the time the HTTP request to the app took (None for
    steps without one); ``seconds`` the whole step, settling included.

    Example::

        [step.status for step in result.steps]   # ['passed', 'failed', 'not run']
        result.steps[0].to_dict()["actual"]["intent"]
    """

    index: int
    step: Step
    status: StepStatus
    sent: tuple[SentMessage, ...] = ()
    intent: str | None = None
    failures: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    http_status: int | None = None
    entities: Mapping[str, Any] = field(default_factory=dict)
    webhook_seconds: float | None = None
    seconds: float = 0.0
    model_calls: tuple[ModelCall, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the step, what was expected, what happened."""
        return {
            "number": self.index + 1,
            "line": self.step.line,
            "kind": self.step.kind,
            "step": self.step.describe(),
            "status": self.status,
            "expected": expect_dict(self.step.expect),
            "actual": {
                "sent": [sent_dict(m) for m in self.sent],
                "intent": self.intent,
                "entities": dict(self.entities),
                "http_status": self.http_status,
            },
            "failures": list(self.failures),
            "notes": list(self.notes),
            "model_calls": [call.to_dict() for call in self.model_calls],
            "timings": {
                "webhook_ms": None if self.webhook_seconds is None else round(self.webhook_seconds * 1000, 3),
                "total_ms": round(self.seconds * 1000, 3),
            },
        }


@dataclass(frozen=True, slots=True)
class ConversationResult:
    """The outcome of one conversation: passed, failed (with the text to read) or skipped (with why).

    Example::

        result.line()        # 'PASS greeting (tests/transcripts/spine/greeting.yaml:1)'
        result.failure       # the formatted failure, or None
    """

    transcript: Transcript
    status: Status
    steps: tuple[StepResult, ...] = ()
    failure: str | None = None
    reason: str | None = None
    seconds: float = 0.0

    @property
    def name(self) -> str:
        """The conversation's name."""
        return self.transcript.name

    @property
    def steps_run(self) -> int:
        """Steps that ran (passed or failed)."""
        return sum(1 for s in self.steps if s.status in ("passed", "failed"))

    def line(self) -> str:
        """The one-line summary ``bot replay`` prints (a failure's text follows, indented)."""
        if self.status == "skipped":
            return f"SKIP {self.name}: {self.reason}"
        label = "PASS" if self.status == "passed" else "FAIL"
        line = f"{label} {self.name} ({self.transcript.origin})"
        unchecked = sum(1 for s in self.steps if any(n.startswith("intent not checked") for n in s.notes))
        if unchecked:
            line += f" [intent not checked on {unchecked} step{'s' if unchecked != 1 else ''}: needs in-process replay]"
        return line

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``bot replay --json``."""
        webhook = [s.webhook_seconds for s in self.steps if s.webhook_seconds is not None]
        return {
            "name": self.name,
            "file": str(self.transcript.path),
            "line": self.transcript.line,
            "channel": self.transcript.channel.value,
            "status": self.status,
            "reason": self.reason,
            "failure": self.failure,
            "failures": [f for s in self.steps for f in s.failures],
            "steps": [s.to_dict() for s in self.steps],
            "timings": {
                "total_ms": round(self.seconds * 1000, 3),
                "webhook_ms": round(sum(webhook) * 1000, 3),
                "steps_run": self.steps_run,
            },
        }


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """Every conversation's result, in the order given, and the wall time.

    Example::

        report.summary()   # '10 passed, 1 failed, 2 skipped'
        report.ok          # False
    """

    results: tuple[ConversationResult, ...]
    seconds: float = 0.0
    mode: str = "in-process"

    @property
    def passed(self) -> int:
        """How many conversations passed."""
        return sum(1 for r in self.results if r.status == "passed")

    @property
    def failed(self) -> int:
        """How many conversations failed."""
        return sum(1 for r in self.results if r.status == "failed")

    @property
    def skipped(self) -> int:
        """How many conversations were skipped (wholly or from some step on)."""
        return sum(1 for r in self.results if r.status == "skipped")

    @property
    def ok(self) -> bool:
        """No conversation failed."""
        return self.failed == 0

    @property
    def steps_run(self) -> int:
        """Steps that ran, over all conversations."""
        return sum(r.steps_run for r in self.results)

    def summary(self) -> str:
        """The closing line: ``N passed, N failed`` (``, N skipped`` when any)."""
        line = f"{self.passed} passed, {self.failed} failed"
        if self.skipped:
            line += f", {self.skipped} skipped"
        return line

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable report ``--json`` writes."""
        return {
            "version": 1,
            "mode": self.mode,
            "summary": {
                "passed": self.passed,
                "failed": self.failed,
                "skipped": self.skipped,
                "steps_run": self.steps_run,
                "seconds": round(self.seconds, 4),
            },
            "conversations": [r.to_dict() for r in self.results],
        }


def expect_dict(expect: Expect | None) -> dict[str, Any] | None:
    if expect is None:
        return None
    out: dict[str, Any] = {}
    if expect.reply is not None:
        out["reply"] = expect.reply
    if expect.reply_contains:
        out["reply_contains"] = list(expect.reply_contains)
    if expect.reply_matches is not None:
        out["reply_matches"] = expect.reply_matches.pattern
    for key in ("no_reply", "replies", "intent", "template", "media", "segments"):
        value = getattr(expect, key)
        if value is not None:
            out[key] = value
    if expect.slots:
        out["slots"] = dict(expect.slots)
    return out


def sent_dict(message: SentMessage) -> dict[str, Any]:
    return {
        "to": message.to,
        "body": message.body,
        "media": list(message.media),
        "template": message.template,
        "segments": message.segments,
        "via": message.via,
    }

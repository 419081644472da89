"""Checking one step's expectations, and explaining a failure.

The runner records what the bot sent for a step (TwiML answers and REST calls
alike) as :class:`SentMessage` values in a :class:`StepOutcome`;
:func:`check` compares that with the step's :class:`~devtools.replay.transcript.Expect`
and returns readable failures; :func:`format_failure` turns them into the
text a user reads to fix the transcript.

Example::

    outcome = StepOutcome(
        sent=(SentMessage("+14155550123", "Sorry, that time is taken."),),
        intent="book",
    )
    check(Expect(reply_contains=("booked",)), outcome, user="+14155550123")
    # ['expected reply containing "booked", but the bot sent: "Sorry, that time is taken."']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from bot.messages import Channel
from devtools.replay.text import quote
from devtools.replay.transcript import Expect, Step, Transcript

__all__ = ["SentMessage", "StepOutcome", "Via", "check", "format_failure"]

#: How a message reached the user: the bot's TwiML answer, the bot's REST call, or
#: Twilio itself (its own STOP/START/HELP confirmations on SMS).
Via: TypeAlias = Literal["twiml", "rest", "twilio"]

# Long bodies are cut in one-line failure messages; format_failure lists them in full.
_SNIPPET = 300


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One message the bot sent during a step, however it left.

    ``to`` is the recipient as Twilio wrote it (``whatsapp:+1...`` or bare);
    ``template`` is the content template's name when one was sent (REST,
    ContentSid); ``segments`` is the SMS segment count, filled by the runner
    (None when not counted, e.g. WhatsApp).

    Example::

        SentMessage("+14155550123", "Booked!", segments=1, via="twiml")
    """

    to: str
    body: str
    media: tuple[str, ...] = ()
    template: str | None = None
    segments: int | None = None
    via: Via = "twiml"
    #: Quick-reply buttons as the user saw them (titles), WhatsApp content templates only.
    buttons: tuple[str, ...] = ()
    #: A list picker's button label: ``buttons`` are then the list's items.
    list_button: str | None = None

    def describe(self) -> str:
        """One line: how it was sent, then the body, e.g. ``[rest, template x] "Hi"``."""
        tags: list[str] = [self.via]
        if self.template is not None:
            tags.append(f"template {self.template}")
        if self.segments is not None:
            tags.append(f"{self.segments} segment{'s' if self.segments != 1 else ''}")
        line = f"[{', '.join(tags)}] {quote(self.body)}"
        if self.media:
            line += f" + media {', '.join(self.media)}"
        return line


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What one step produced: every message sent, and the intent it resolved to.

    Example::

        StepOutcome(sent=(SentMessage("+14155550123", "Hi!"),), intent="greet")
    """

    sent: tuple[SentMessage, ...] = ()
    intent: str | None = None
    # The slots (entities) the turn read: ``{"service": "cleaning", "time": "15:00"}``.
    entities: Mapping[str, Any] = field(default_factory=dict)
    # Messages to the texter held for quiet hours by the step: ``until 08:00 America/New_York (Tue Mar 3)``.
    held: tuple[str, ...] = ()


def check(expect: Expect, outcome: StepOutcome, *, user: str | None = None) -> list[str]:
    """Every expectation in ``expect`` that ``outcome`` breaks, as readable sentences.

    When ``user`` is given, only messages addressed to that number count (a
    hand-off may also notify staff); ``whatsapp:`` prefixes are ignored when
    comparing. Text checks apply to the bodies joined with newlines. An empty
    list means the step passed.

    Example::

        check(Expect(intent="book"), StepOutcome(intent="fallback"))
        # ['expected intent book, got fallback']
    """
    sent = _to_user(outcome.sent, user)
    text = "\n".join(message.body for message in sent)
    failures: list[str] = []

    if expect.reply is not None and text.strip() != expect.reply.strip():
        failure = f"expected reply {quote(expect.reply.strip())}, but {_sent_text(sent, text)}"
        if sent:
            failure += f" (they differ from character {_first_difference(expect.reply, text)})"
        failures.append(failure)

    if expect.reply_contains:
        folded = text.casefold()
        missing = [part for part in expect.reply_contains if part.casefold() not in folded]
        if missing:
            wanted = " and ".join(quote(part) for part in missing)
            failures.append(f"expected reply containing {wanted}, but {_sent_text(sent, text)}")

    if expect.reply_matches is not None and expect.reply_matches.search(text) is None:
        failures.append(f"expected reply matching /{expect.reply_matches.pattern}/, but {_sent_text(sent, text)}")

    if expect.no_reply is True and sent:
        failures.append(f"expected no reply, but the bot sent {_count(sent)}: {_bodies(sent)}")
    if expect.no_reply is False and not sent:
        failures.append("expected a reply, but the bot sent nothing")

    if expect.replies is not None and len(sent) != expect.replies:
        got = f"{len(sent)}: {_bodies(sent)}" if sent else "none"
        failures.append(f"expected {_plural(expect.replies, 'reply', 'replies')}, got {got}")

    if expect.intent is not None and outcome.intent != expect.intent:
        got = outcome.intent if outcome.intent is not None else "none (no intent was resolved)"
        failures.append(f"expected intent {expect.intent}, got {got}")

    for name, value in expect.slots:
        read = outcome.entities.get(name)
        if read is None or str(read) != value:
            shown = quote(str(read)) if read is not None else "none"
            failures.append(f"expected slot {name} {quote(value)}, got {shown}")

    if expect.template is not None and not any(m.template == expect.template for m in sent):
        templates = sorted({m.template for m in sent if m.template is not None})
        got = f"template {', '.join(templates)}" if templates else "no template"
        failures.append(f"expected template {expect.template}, but the bot sent {got}")

    if expect.media is not None:
        carrying = [i for i, m in enumerate(sent, start=1) if m.media]
        if expect.media and not carrying:
            failures.append(f"expected a reply with media, but no message carried media; {_sent_text(sent, text)}")
        if not expect.media and carrying:
            which = ", ".join(str(i) for i in carrying)
            failures.append(f"expected no media, but message {which} carried media")

    if expect.segments is not None:
        failures.extend(_check_segments(expect.segments, sent))

    if expect.held is not None and not any(h.startswith(f"until {expect.held} ") for h in outcome.held):
        got = "; ".join(f"held {h}" for h in outcome.held) if outcome.held else "nothing was held"
        failures.append(f"expected a message held for quiet hours until {expect.held}, but {got}")

    return failures


def format_failure(
    transcript: Transcript,
    step_index: int,
    step: Step,
    failures: Sequence[str],
    sent: Sequence[SentMessage],
) -> str:
    """The text a user reads to fix a failing step; ``step_index`` is 0-based.

    It names the file and line of the step, the step number (1-based) and its
    source, each failure, and every message the bot sent (messages to other
    numbers are shown but marked as not checked).

    Example::

        print(format_failure(t, 2, t.turns[2], failures, outcome.sent))
        # tests/transcripts/booking.yaml:17: "book a cleaning" failed at step 3 of 7
        #   step 3: button: "yes"
        #   - expected reply containing "booked", but the bot sent: "Sorry, that time is taken."
        #   the bot sent 1 message:
        #     1. [twiml] "Sorry, that time is taken."
    """
    number = step_index + 1
    lines = [
        f"{transcript.path}:{step.line}: {quote(transcript.name)} failed at step {number} of {len(transcript.turns)}",
        f"  step {number}: {step.describe()}",
    ]
    lines.extend(f"  - {failure}" for failure in failures)
    if not sent:
        lines.append("  the bot sent nothing")
    else:
        lines.append(f"  the bot sent {_count(sent)}:")
        for i, message in enumerate(sent, start=1):
            other = (
                ""
                if _same_number(message.to, transcript.user)
                else (f" (to {message.to}, not this texter; not checked)")
            )
            lines.append(f"    {i}. {message.describe()}{other}")
    return "\n".join(lines)


def _check_segments(limit: int, sent: Sequence[SentMessage]) -> list[str]:
    uncounted = [str(i) for i, m in enumerate(sent, start=1) if m.segments is None]
    if uncounted:
        # Never pass a cost check we could not compute.
        return [
            f"cannot check segments: message {', '.join(uncounted)} has no segment count (the runner did not count it)"
        ]
    counts = [m.segments or 0 for m in sent]
    total = sum(counts)
    if total <= limit:
        return []
    breakdown = f" ({' + '.join(map(str, counts))})" if len(counts) > 1 else ""
    return [f"expected at most {_plural(limit, 'SMS segment', 'SMS segments')}, but the reply costs {total}{breakdown}"]


def _to_user(sent: Sequence[SentMessage], user: str | None) -> tuple[SentMessage, ...]:
    if user is None:
        return tuple(sent)
    return tuple(message for message in sent if _same_number(message.to, user))


def _same_number(address: str, user: str) -> bool:
    return Channel.from_address(address)[1] == Channel.from_address(user)[1]


def _sent_text(sent: Sequence[SentMessage], text: str) -> str:
    if not sent:
        return "the bot sent nothing"
    return f"the bot sent: {_snippet(text)}"


def _bodies(sent: Sequence[SentMessage]) -> str:
    return ", ".join(_snippet(message.body) for message in sent)


def _snippet(text: str) -> str:
    if len(text) > _SNIPPET:
        text = text[: _SNIPPET - 1] + "…"
    return quote(text)


def _count(sent: Sequence[SentMessage]) -> str:
    return _plural(len(sent), "message", "messages")


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _first_difference(expected: str, actual: str) -> int:
    """1-based position of the first differing character, whitespace-trimmed."""
    a, b = expected.strip(), actual.strip()
    for i, (x, y) in enumerate(zip(a, b, strict=False), start=1):
        if x != y:
            return i
    return min(len(a), len(b)) + 1

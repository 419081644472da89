"""Writing a conversation down as a transcript (``bot chat --record FILE``).

Each thing the texter sent becomes a ``user:`` step (a quick-reply press,
``/button N`` in ``bot chat``, a ``button:`` step with its payload) whose
``expect`` holds exactly what the bot did, so the file replays green as written and is ready
to be loosened by hand:

- one message: ``reply:`` with its text;
- several: ``replies: N`` and a ``reply_contains`` entry per message;
- none: ``no_reply: true``;
- plus ``intent:``, ``template:`` and ``media: true`` when they apply.

Only messages to the texter count (as in replay); the clock's start is kept
as ``now:`` so replies about "tomorrow" replay the same.

Example::

    recorder = TranscriptRecorder(name="booking", channel=Channel.SMS, user="+14155550123",
                                  now=datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
    recorder.add("hi", StepOutcome(sent=(SentMessage("+14155550123", "Hi!"),), intent="greet"))
    print(recorder.dump())
    # name: booking
    # user: "+14155550123"
    # now: "2026-03-02T14:00:00+00:00"
    # turns:
    #   - user: "hi"
    #     expect:
    #       intent: "greet"
    #       reply: "Hi!"
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bot.errors import TranscriptError
from bot.messages import Channel
from devtools.replay.expect import SentMessage, StepOutcome
from devtools.replay.transcript import parse_transcripts

__all__ = ["RecordedTurn", "TranscriptRecorder", "dump_transcript", "expectation_for", "sent_to"]


@dataclass(frozen=True, slots=True)
class RecordedTurn:
    """One message the texter sent (or the button they pressed) and what the bot did about it.

    Example::

        RecordedTurn("hi", StepOutcome(sent=(SentMessage("+14155550123", "Hi!"),), intent="greet"))
        RecordedTurn("yes", outcome, button=True)     # a quick-reply press, payload "yes"
    """

    text: str
    outcome: StepOutcome
    #: ``text`` is the payload of a pressed quick-reply button (a ``button:`` step).
    button: bool = False


def expectation_for(outcome: StepOutcome, *, user: str) -> dict[str, Any]:
    """The ``expect`` mapping that holds exactly for ``outcome`` (messages to ``user`` only).

    Example::

        expectation_for(StepOutcome(intent="greet"), user="+14155550123")
        # {'intent': 'greet', 'no_reply': True}
    """
    sent = sent_to(outcome, user)
    expect: dict[str, Any] = {}
    if outcome.intent is not None:
        expect["intent"] = outcome.intent
    if not sent:
        expect["no_reply"] = True
        return expect
    bodies = [m.body.strip() for m in sent if m.body.strip()]
    if len(sent) == 1:
        if bodies:
            expect["reply"] = bodies[0]
        else:
            expect["replies"] = 1
    else:
        expect["replies"] = len(sent)
        if bodies:
            expect["reply_contains"] = bodies
    template = next((m.template for m in sent if m.template is not None), None)
    if template is not None:
        expect["template"] = template
    if any(m.media for m in sent):
        expect["media"] = True
    return expect


def dump_transcript(
    *,
    name: str,
    channel: Channel,
    user: str,
    turns: Sequence[RecordedTurn],
    profile_name: str | None = None,
    now: datetime | None = None,
    comment: str | None = None,
) -> str:
    """The transcript (format version 1) for a recorded conversation, as YAML text.

    The result is parsed back before it is returned, so what this writes
    always loads; :class:`~bot.errors.TranscriptError` says why if it would not
    (e.g. a user number that is not E.164).

    Example::

        text = dump_transcript(name="hello", channel=Channel.WHATSAPP, user="+14155550123",
                               turns=[RecordedTurn("hi", outcome)], profile_name="Ana")
    """
    if not turns:
        raise TranscriptError("nothing to record: the conversation has no messages")
    lines: list[str] = []
    if comment:
        lines.extend(f"# {line}".rstrip() for line in comment.splitlines())
    lines.append(f"name: {_str(name)}")
    if channel is not Channel.SMS:
        lines.append(f"channel: {channel.value}")
    lines.append(f"user: {_str(user)}")
    if profile_name:
        lines.append(f"profile_name: {_str(profile_name)}")
    if now is not None:
        lines.append(f"now: {_str(now.isoformat())}")
    lines.append("turns:")
    for turn in turns:
        lines.append(f"  - {'button' if turn.button else 'user'}: {_str(turn.text)}")
        lines.append("    expect:")
        for key, value in expectation_for(turn.outcome, user=user).items():
            if isinstance(value, list):
                lines.append(f"      {key}:")
                lines.extend(f"        - {_str(item)}" for item in value)
            elif isinstance(value, bool):
                lines.append(f"      {key}: {'true' if value else 'false'}")
            elif isinstance(value, int):
                lines.append(f"      {key}: {value}")
            else:
                lines.append(f"      {key}: {_str(str(value))}")
    text = "\n".join(lines) + "\n"
    try:
        parse_transcripts(text, path="<recording>")
    except TranscriptError as exc:
        raise TranscriptError(f"the recording is not a valid transcript: {exc}") from None
    return text


class TranscriptRecorder:
    """Collects a live conversation's turns and writes them as a transcript.

    Example::

        recorder = TranscriptRecorder(name="session", channel=Channel.SMS, user="+14155550100")
        recorder.add("hi", outcome)
        recorder.write(Path("tests/transcripts/session.yaml"))
    """

    def __init__(
        self,
        *,
        name: str,
        channel: Channel,
        user: str,
        profile_name: str | None = None,
        now: datetime | None = None,
        comment: str | None = None,
    ) -> None:
        self.name = name
        self.channel = channel
        self.user = user
        self.profile_name = profile_name
        self.now = now
        self.comment = comment
        self.turns: list[RecordedTurn] = []

    def add(self, text: str, outcome: StepOutcome) -> None:
        """Record that the texter sent ``text`` and the bot did ``outcome``."""
        self.turns.append(RecordedTurn(text, outcome))

    def add_button(self, payload: str, outcome: StepOutcome) -> None:
        """Record that the texter pressed the quick-reply button ``payload`` and the bot did ``outcome``."""
        self.turns.append(RecordedTurn(payload, outcome, button=True))

    def dump(self) -> str:
        """The transcript as YAML text (see :func:`dump_transcript`)."""
        return dump_transcript(
            name=self.name,
            channel=self.channel,
            user=self.user,
            turns=self.turns,
            profile_name=self.profile_name,
            now=self.now,
            comment=self.comment,
        )

    def write(self, path: Path) -> None:
        """Write the transcript to ``path`` (UTF-8), creating its folder if needed."""
        text = self.dump()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _str(text: str) -> str:
    """A YAML double-quoted scalar: JSON's quoting when it is safe, else PyYAML's escapes."""
    if all(ch in "\n\t\r" or (ch.isprintable() and ch not in "\u2028\u2029\x85\ufeff") for ch in text):
        return json.dumps(text, ensure_ascii=False)
    dumped = yaml.safe_dump(text, default_style='"', allow_unicode=True, width=float("inf"))
    return dumped.rstrip("\n").removesuffix("\n...").rstrip("\n")


def sent_to(outcome: StepOutcome, user: str) -> list[SentMessage]:
    """The messages of ``outcome`` addressed to ``user`` (``whatsapp:`` prefixes ignored)."""
    return [m for m in outcome.sent if Channel.from_address(m.to)[1] == Channel.from_address(user)[1]]

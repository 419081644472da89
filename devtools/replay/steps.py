"""A transcript as data: the conversation, its steps and what each step expects.

Frozen dataclasses, built by :mod:`devtools.replay.reader` from YAML (each
keeps its source line) and replayed by :mod:`devtools.replay.runner`.

Example::

    step = UserStep("book a cleaning", expect=Expect(intent="book"), line=4)
    step.describe()      # 'user: "book a cleaning"'
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import ClassVar, TypeAlias

from bot.messages import Channel
from devtools.replay.durations import format_duration
from devtools.replay.text import quote


@dataclass(frozen=True, slots=True)
class Expect:
    """What must hold after one step; every field left at its default is not checked.

    ``reply_contains`` is empty when not given. ``no_reply=False`` (an
    extension) means "at least one message was sent".

    Example::

        Expect(reply_contains=("booked",), intent="book")
    """

    reply: str | None = None
    reply_contains: tuple[str, ...] = ()
    reply_matches: re.Pattern[str] | None = None
    no_reply: bool | None = None
    replies: int | None = None
    intent: str | None = None
    template: str | None = None
    media: bool | None = None
    segments: int | None = None
    # Extension: slot values the turn must have read, e.g. (("service", "cleaning"), ("time", "15:00")).
    slots: tuple[tuple[str, str], ...] = ()
    # Extension: a message of the step was held for quiet hours until this local time ("08:00").
    held: str | None = None
    line: int = 0


@dataclass(frozen=True, slots=True)
class _StepBase:
    # kw_only so subclasses can add positional fields before these two.
    expect: Expect | None = field(default=None, kw_only=True)
    line: int = field(default=0, kw_only=True)

    kind: ClassVar[str] = ""

    def describe(self) -> str:
        """The step as a one-line YAML-like source, e.g. ``user: "hi"``."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class _QuotedStep(_StepBase):
    # A step written as `kind: "value"`: its one text field, named by `quoted`.
    quoted: ClassVar[str] = ""

    def describe(self) -> str:
        return f"{self.kind}: {quote(getattr(self, self.quoted))}"


@dataclass(frozen=True, slots=True)
class UserStep(_StepBase):
    """An inbound message: Body ``text``, optional media types and location.

    Example::

        UserStep("book a cleaning", media=("image/jpeg",), line=12)
    """

    text: str
    media: tuple[str, ...] = ()
    location: tuple[float, float] | None = None
    #: On a call: the recogniser's ``Confidence`` (0..1) for this speech.
    confidence: float | None = None

    kind: ClassVar[str] = "user"

    def describe(self) -> str:
        parts = [f"user: {quote(self.text)}"]
        if self.confidence is not None:
            parts.append(f"confidence: {self.confidence:g}")
        if self.media:
            parts.append(f"media: [{', '.join(self.media)}]")
        if self.location is not None:
            lat, lon = self.location
            parts.append(f"location: {{lat: {lat:g}, lon: {lon:g}}}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ButtonStep(_QuotedStep):
    """A WhatsApp quick-reply press with ``ButtonPayload=payload``.

    Example::

        ButtonStep("yes")
    """

    payload: str

    kind: ClassVar[str] = "button"
    quoted: ClassVar[str] = "payload"


@dataclass(frozen=True, slots=True)
class DuplicateStep(_StepBase):
    """Deliver the previous inbound request again, byte for byte (same MessageSid).

    Example::

        DuplicateStep(expect=Expect(no_reply=True))
    """

    kind: ClassVar[str] = "duplicate"

    def describe(self) -> str:
        return "duplicate: true"


@dataclass(frozen=True, slots=True)
class AdvanceStep(_StepBase):
    """Move the frozen clock forward by ``delta``.

    Example::

        AdvanceStep(timedelta(hours=23)).describe()  # 'advance: 23h'
    """

    delta: timedelta

    kind: ClassVar[str] = "advance"

    def describe(self) -> str:
        return f"advance: {format_duration(self.delta)}"


@dataclass(frozen=True, slots=True)
class StatusStep(_StepBase):
    """A status callback for the bot's last outbound message.

    Example::

        StatusStep("undelivered", error_code=30003)
    """

    status: str
    error_code: int | None = None

    kind: ClassVar[str] = "status"

    def describe(self) -> str:
        if self.error_code is None:
            return f"status: {{status: {self.status}}}"
        return f"status: {{status: {self.status}, error_code: {self.error_code}}}"


@dataclass(frozen=True, slots=True)
class RunStep(_StepBase):
    """Run the named scheduled job now.

    Example::

        RunStep("reminders", expect=Expect(template="appointment_reminder"))
    """

    job: str

    kind: ClassVar[str] = "run"

    def describe(self) -> str:
        return f"run: {self.job}"


@dataclass(frozen=True, slots=True)
class BroadcastStep(_StepBase):
    """``bot broadcast`` of one content template to this transcript's texter (extension).

    Example::

        BroadcastStep("welcome_back", (("name", "Ana"),), expect=Expect(held="08:00"))
    """

    template: str
    variables: tuple[tuple[str, str], ...] = ()

    kind: ClassVar[str] = "broadcast"

    def describe(self) -> str:
        values = ", ".join(f"{name}: {quote(value)}" for name, value in self.variables)
        return f"broadcast: {{template: {self.template}" + (f", variables: {{{values}}}}}" if values else "}")


@dataclass(frozen=True, slots=True)
class CallStep(_StepBase):
    """Place a call to the bot (``channel: voice``); its replies are the greeting.

    Example::

        CallStep(expect=Expect(reply_contains=("How can I help",)))
    """

    kind: ClassVar[str] = "call"

    def describe(self) -> str:
        return "call: true"


@dataclass(frozen=True, slots=True)
class DigitsStep(_QuotedStep):
    """Press keypad keys on the call (``Digits``).

    Example::

        DigitsStep("1").describe()  # 'digits: "1"'
    """

    digits: str

    kind: ClassVar[str] = "digits"
    quoted: ClassVar[str] = "digits"


@dataclass(frozen=True, slots=True)
class HangupStep(_StepBase):
    """The caller hangs up: the call ends with a ``completed`` status callback.

    Example::

        HangupStep()
    """

    kind: ClassVar[str] = "hangup"

    def describe(self) -> str:
        return "hangup: true"


@dataclass(frozen=True, slots=True)
class TextStep(_QuotedStep):
    """On a voice transcript: an SMS from the caller's number (the same patient).

    Example::

        TextStep("book a cleaning tomorrow at 10")
    """

    text: str

    kind: ClassVar[str] = "text"
    quoted: ClassVar[str] = "text"


Step: TypeAlias = (
    UserStep | ButtonStep | DuplicateStep | AdvanceStep | StatusStep | RunStep | BroadcastStep
    | CallStep | DigitsStep | HangupStep | TextStep
)
#: Steps that exist only on a call (``channel: voice``).
VOICE_STEPS: tuple[type[_StepBase], ...] = (CallStep, DigitsStep, HangupStep, TextStep)


@dataclass(frozen=True, slots=True)
class Transcript:
    """One conversation between one texter and the bot.

    ``line`` is where the conversation's mapping starts in ``path``; each
    step carries its own ``line``. ``user`` is the bare E.164 number (the
    channel adds ``whatsapp:``). An empty ``llm`` means no model output is
    scripted, so any model call during replay fails.

    Example::

        [t] = load_transcripts([Path("tests/transcripts/booking.yaml")])
        t.origin            # 'tests/transcripts/booking.yaml:1'
        t.needs_local(t.turns[3])  # 'needs the frozen clock (advance: 23h)'
    """

    name: str
    channel: Channel
    user: str
    profile_name: str | None = None
    now: datetime | None = None
    llm: tuple[str, ...] = ()
    turns: tuple[Step, ...] = ()
    path: Path = Path("<string>")
    line: int = 1
    #: On a call: what the staff phone does when the bot dials it (``DialCallStatus``).
    dial_status: str = "completed"

    @property
    def origin(self) -> str:
        """``path:line`` of the conversation, for reports."""
        return f"{self.path}:{self.line}"

    def needs_local(self, step: Step) -> str | None:
        """Why ``step`` can only be replayed in-process, or None if ``--url`` can do it.

        In-process replay owns the clock, the model and the outbound recorder;
        a running server (``--url``) owns none of them, so:

        - ``advance`` needs the frozen clock;
        - ``run`` needs in-process access to the scheduled jobs, ``broadcast`` to the outbound parts;
        - ``status`` needs the SID of the bot's last outbound message, which
          only the in-process recorder sees;
        - with ``now:`` set, every step needs the frozen clock (replies about
          "tomorrow" were written for that moment);
        - with ``llm:`` set, every step needs the scripted model (any step may
          consume an output).

        Later steps depend on the state a skipped step would have produced,
        so a runner should skip the rest of the conversation from the first
        step that returns a reason.

        Example::

            t.needs_local(AdvanceStep(timedelta(hours=1)))  # 'needs the frozen clock (advance: 1h)'
        """
        if self.channel is Channel.VOICE:
            return "needs in-process replay to play the call (channel: voice)"
        if isinstance(step, AdvanceStep):
            return f"needs the frozen clock ({step.describe()})"
        if isinstance(step, RunStep):
            return f"needs in-process replay to run a scheduled job ({step.describe()})"
        if isinstance(step, BroadcastStep):
            return f"needs in-process replay to queue a broadcast ({step.describe()})"
        if isinstance(step, StatusStep):
            return "needs the SID of the bot's last outbound message, seen only in-process (status)"
        if self.now is not None:
            return f"needs the frozen clock (now: {self.now.isoformat()})"
        if self.llm:
            return "needs the scripted model (llm)"
        return None

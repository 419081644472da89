"""The transcript format (version 1): parse, validate, select.

A transcript file holds one conversation, or several as YAML documents split by
``---``. Parsing is strict, as ``docs/transcripts.md`` promises: unknown keys,
missing keys and malformed values raise :class:`~bot.errors.TranscriptError`
whose message starts with ``path:line:`` so an editor can jump to the spot.

We compose the YAML into nodes (not Python objects) and read them ourselves,
so that every key and value keeps its line and text values are taken as the
user wrote them (``user: yes`` sends "yes", not YAML's boolean ``True``).

Example::

    [t] = load_transcripts([Path("tests/transcripts/greeting.yaml")])
    # greeting.yaml:
    #   name: greeting
    #   user: "+14155550123"
    #   turns:
    #     - user: "hi"
    #       expect: {reply_contains: "book"}
    step = t.turns[0]
    step.text, step.line, step.expect.reply_contains  # ('hi', 4, ('book',))
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, TypeAlias

import phonenumbers
import yaml

from bot.errors import TranscriptError
from bot.messages import Channel

__all__ = [
    "AdvanceStep",
    "ButtonStep",
    "DuplicateStep",
    "Expect",
    "RunStep",
    "StatusStep",
    "Step",
    "Transcript",
    "UserStep",
    "format_duration",
    "load_transcripts",
    "parse_duration",
    "parse_transcripts",
    "select",
]

# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------


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
        parts = [f"user: {_quote(self.text)}"]
        if self.confidence is not None:
            parts.append(f"confidence: {self.confidence:g}")
        if self.media:
            parts.append(f"media: [{', '.join(self.media)}]")
        if self.location is not None:
            lat, lon = self.location
            parts.append(f"location: {{lat: {lat:g}, lon: {lon:g}}}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ButtonStep(_StepBase):
    """A WhatsApp quick-reply press with ``ButtonPayload=payload``.

    Example::

        ButtonStep("yes")
    """

    payload: str

    kind: ClassVar[str] = "button"

    def describe(self) -> str:
        return f"button: {_quote(self.payload)}"


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
class CallStep(_StepBase):
    """Place a call to the bot (``channel: voice``); its replies are the greeting.

    Example::

        CallStep(expect=Expect(reply_contains=("How can I help",)))
    """

    kind: ClassVar[str] = "call"

    def describe(self) -> str:
        return "call: true"


@dataclass(frozen=True, slots=True)
class DigitsStep(_StepBase):
    """Press keypad keys on the call (``Digits``).

    Example::

        DigitsStep("1").describe()  # 'digits: "1"'
    """

    digits: str

    kind: ClassVar[str] = "digits"

    def describe(self) -> str:
        return f"digits: {_quote(self.digits)}"


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
class TextStep(_StepBase):
    """On a voice transcript: an SMS from the caller's number (the same patient).

    Example::

        TextStep("book a cleaning tomorrow at 10")
    """

    text: str

    kind: ClassVar[str] = "text"

    def describe(self) -> str:
        return f"text: {_quote(self.text)}"


Step: TypeAlias = (
    UserStep | ButtonStep | DuplicateStep | AdvanceStep | StatusStep | RunStep
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
        - ``run`` needs in-process access to the scheduled jobs;
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
        if isinstance(step, StatusStep):
            return "needs the SID of the bot's last outbound message, seen only in-process (status)"
        if self.now is not None:
            return f"needs the frozen clock (now: {self.now.isoformat()})"
        if self.llm:
            return "needs the scripted model (llm)"
        return None


# --------------------------------------------------------------------------
# Durations
# --------------------------------------------------------------------------

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``25h``, ``2d``, or a combination in that order (``1h30m``).

    Raises :class:`ValueError` for anything else, including zero.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if delta <= timedelta(0):
        raise ValueError(f"{text!r} is zero; the clock only moves forward")
    return delta


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration` (whole seconds).

    >>> format_duration(timedelta(days=1, minutes=30))
    '1d30m'
    """
    total = int(delta.total_seconds())
    if total <= 0:
        return "0s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
    return "".join(f"{value}{unit}" for value, unit in units if value)


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_transcripts(paths: Iterable[Path | str]) -> list[Transcript]:
    """Load every conversation from files and folders, in a stable order.

    A folder contributes its ``*.yaml`` and ``*.yml`` files, recursively,
    sorted by path, skipping hidden files and folders. A path given twice is
    read once. A missing path, or a folder with no transcript files, is an
    error: a typo on the command line must not look like "0 failed".

    Example::

        load_transcripts([Path("tests/transcripts"), Path("extra/one.yaml")])
    """
    seen: set[Path] = set()
    transcripts: list[Transcript] = []
    for path in map(Path, paths):
        for file in _files(path):
            resolved = file.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            transcripts.extend(_load_file(file))
    return transcripts


def select(transcripts: Iterable[Transcript], pattern: str | None) -> list[Transcript]:
    """The transcripts whose name or file name contains ``pattern`` (case-insensitive).

    This is ``bot replay -k``. An empty or None pattern selects everything.

    Example::

        select(load_transcripts([Path("tests/transcripts")]), "opt out")
    """
    if not pattern:
        return list(transcripts)
    needle = pattern.casefold()
    return [t for t in transcripts if needle in t.name.casefold() or needle in t.path.name.casefold()]


def parse_transcripts(text: str, path: Path | str = "<string>") -> list[Transcript]:
    """Parse YAML source holding one or more conversations; ``path`` is used in errors.

    Example::

        parse_transcripts(Path("a.yaml").read_text(), path="a.yaml")
    """
    reader = _Reader(Path(path))
    documents = reader.compose(text)
    transcripts: list[Transcript] = []
    names: dict[str, int] = {}
    for document in documents:
        transcript = reader.conversation(document)
        if transcript.name in names:
            raise reader.error(
                transcript.line,
                f"name {_quote(transcript.name)} is already used by the conversation at line "
                f"{names[transcript.name]}; names must be unique in a file",
            )
        names[transcript.name] = transcript.line
        transcripts.append(transcript)
    if not transcripts:
        raise reader.error(1, "no conversation in this file (expected name, user and turns)")
    return transcripts


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in (".yaml", ".yml")
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise TranscriptError(f"{path}: no *.yaml or *.yml transcript files in this folder")
        yield from found
    elif path.is_file():
        yield path
    else:
        raise TranscriptError(f"{path}: no such file or folder")


def _load_file(path: Path) -> list[Transcript]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TranscriptError(f"{path}:{line}: not valid UTF-8 text ({exc.reason})") from None
    return parse_transcripts(text, path)


# --------------------------------------------------------------------------
# A typed node tree with lines (PyYAML has no type stubs here)
# --------------------------------------------------------------------------

_YAML_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class _Scalar:
    text: str
    tag: str  # short form for core tags ("str", "int", "null", ...), else the full tag
    line: int

    def describe(self) -> str:
        return "nothing" if self.tag == "null" else _quote(self.text)


@dataclass(frozen=True, slots=True)
class _Seq:
    items: tuple[_Node, ...]
    line: int

    def describe(self) -> str:
        return "a list"


@dataclass(frozen=True, slots=True)
class _Map:
    # (key, line of the key, value), in source order, keys unique.
    entries: tuple[tuple[str, int, _Node], ...]
    line: int

    def describe(self) -> str:
        return "a mapping"

    def get(self, key: str) -> _Node | None:
        for name, _, value in self.entries:
            if name == key:
                return value
        return None

    def key_line(self, key: str) -> int:
        for name, line, _ in self.entries:
            if name == key:
                return line
        return self.line

    def names(self) -> list[str]:
        return [name for name, _, _ in self.entries]


_Node: TypeAlias = _Scalar | _Seq | _Map

_TOP_KEYS = ("name", "channel", "user", "profile_name", "now", "llm", "turns", "dial_status")
_STEP_KEYS = ("user", "button", "duplicate", "advance", "status", "run", "call", "digits", "hangup", "text")
_STEP_EXTRA = ("media", "location", "confidence", "expect")
_DIAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
_EXPECT_KEYS = (
    "reply",
    "reply_contains",
    "reply_matches",
    "no_reply",
    "replies",
    "intent",
    "template",
    "media",
    "segments",
    "slots",
)
# Twilio's message statuses a status callback can report for an outbound message.
_STATUSES = (
    "accepted",
    "scheduled",
    "canceled",
    "queued",
    "sending",
    "sent",
    "failed",
    "delivered",
    "undelivered",
    "read",
    "partially_delivered",
)
_DECIMAL = re.compile(r"\+?\d+")
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")

_YAML_HINTS = {
    "found unknown escape character": (
        "inside double quotes a backslash starts an escape; write regular expressions in single quotes, e.g. '\\d+ ?pm'"
    ),
    "found character '\\t' that cannot start any token": "YAML does not allow tabs; indent with spaces",
}


class _Reader:
    """Reads one file's node tree into transcripts; knows the path for errors."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, line: int, message: str) -> TranscriptError:
        return TranscriptError(f"{self.path}:{line}: {message}")

    # -- YAML ---------------------------------------------------------------

    def compose(self, text: str) -> list[_Node]:
        try:
            raw = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise self._yaml_error(exc, text) from None
        converted: dict[int, _Node] = {}
        documents: list[_Node] = []
        for node in raw:
            doc = self._convert(node, converted, set())
            # An empty document (a leading or trailing ---) holds no conversation.
            if isinstance(doc, _Scalar) and doc.tag == "null":
                continue
            documents.append(doc)
        return documents

    def _yaml_error(self, exc: Any, text: str) -> TranscriptError:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line = int(mark.line) + 1
        elif isinstance(getattr(exc, "position", None), int):  # yaml.reader.ReaderError
            line = text[: exc.position].count("\n") + 1
        else:
            line = 1
        problem = getattr(exc, "problem", None)
        character = getattr(exc, "character", None)  # yaml.reader.ReaderError
        if problem is None and isinstance(character, int | str):
            code = character if isinstance(character, int) else ord(character[:1] or "\0")
            problem = f"the control character U+{code:04X} is not allowed in YAML"
        problem = str(problem or exc)
        context = getattr(exc, "context", None)
        message = f"YAML syntax error: {problem}"
        if context:
            message += f" ({context})"
        for needle, hint in _YAML_HINTS.items():
            if needle in problem:
                message += f"; {hint}"
        return self.error(line, message)

    def _convert(self, node: Any, done: dict[int, _Node], active: set[int]) -> _Node:
        # Aliases share node objects: memoise so `&a`/`*a` bombs stay linear,
        # and refuse cycles (`&a [*a]`) instead of recursing forever.
        key = id(node)
        if key in done:
            return done[key]
        line = int(node.start_mark.line) + 1
        if key in active:
            raise self.error(line, "an alias refers to itself; transcripts cannot be recursive")
        tag = str(node.tag)
        short = tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag
        if short not in _KNOWN_TAGS:
            raise self.error(line, f"unsupported YAML tag {tag}; transcripts use plain YAML values")
        result: _Node
        if isinstance(node, yaml.ScalarNode):
            result = _Scalar(str(node.value), short, line)
        elif isinstance(node, yaml.SequenceNode):
            active.add(key)
            result = _Seq(tuple(self._convert(item, done, active) for item in node.value), line)
            active.discard(key)
        else:
            active.add(key)
            entries: list[tuple[str, int, _Node]] = []
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = int(key_node.start_mark.line) + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.error(key_line, "a key must be a plain name, not a list or mapping")
                name = str(key_node.value)
                if name in lines:
                    raise self.error(key_line, f"duplicate key {name!r} (first given at line {lines[name]})")
                lines[name] = key_line
                entries.append((name, key_line, self._convert(value_node, done, active)))
            active.discard(key)
            result = _Map(tuple(entries), line)
        done[key] = result
        return result

    # -- values -------------------------------------------------------------

    def mapping(self, node: _Node, what: str) -> _Map:
        if not isinstance(node, _Map):
            raise self.error(node.line, f"{what} must be a mapping of keys, got {node.describe()}")
        return node

    def check_keys(self, node: _Map, allowed: Sequence[str], where: str) -> None:
        for name, line, _ in node.entries:
            if name not in allowed:
                message = f"unknown key {name!r} in {where}"
                close = difflib.get_close_matches(name, allowed, n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
                message += f" (allowed: {', '.join(allowed)})"
                raise self.error(line, message)

    def text(self, node: _Node, key: str, *, empty_ok: bool = False) -> str:
        """A text value exactly as written: ``yes`` stays "yes", ``1`` stays "1"."""
        if not isinstance(node, _Scalar):
            raise self.error(node.line, f"{key} must be text, got {node.describe()}")
        if node.tag == "null":
            raise self.error(node.line, f'{key} needs a value (quote it, e.g. {key}: "null", to mean that text)')
        if not empty_ok and not node.text.strip():
            raise self.error(node.line, f"{key} must not be empty")
        return node.text

    def flag(self, node: _Node, key: str) -> bool:
        if isinstance(node, _Scalar) and node.tag == "bool":
            return node.text.lower() in ("true", "yes", "on")
        raise self.error(node.line, f"{key} must be true or false, got {node.describe()}")

    def integer(self, node: _Node, key: str, *, minimum: int) -> int:
        # Plain decimal only: YAML 1.1 would read 010 as octal and 1:30 as 90.
        if isinstance(node, _Scalar) and node.tag == "int" and _DECIMAL.fullmatch(node.text):
            value = int(node.text)
            if value >= minimum:
                return value
        raise self.error(node.line, f"{key} must be a whole number of at least {minimum}, got {node.describe()}")

    def number(self, node: _Node, key: str, low: float, high: float) -> float:
        if isinstance(node, _Scalar) and node.tag in ("int", "float"):
            try:
                value = float(node.text.replace("_", ""))
            except ValueError:
                value = float("nan")
            if low <= value <= high:
                return value
        raise self.error(node.line, f"{key} must be a number from {low:g} to {high:g}, got {node.describe()}")

    # -- the format -----------------------------------------------------------

    def conversation(self, node: _Node) -> Transcript:
        if not isinstance(node, _Map):
            raise self.error(
                node.line,
                f"a conversation must be a mapping with name, user and turns, got "
                f"{node.describe()} (to put several in one file, separate them with ---)",
            )
        top = node
        self.check_keys(top, _TOP_KEYS, "the conversation")
        for required in ("name", "user", "turns"):
            if top.get(required) is None:
                raise self.error(top.line, f"the conversation has no {required!r} ({_REQUIRED[required]})")

        name = self.text(_must(top.get("name")), "name")

        channel = Channel.SMS
        channel_node = top.get("channel")
        if channel_node is not None:
            value = self.text(channel_node, "channel")
            try:
                channel = Channel(value)
            except ValueError:
                choices = ", ".join(c.value for c in Channel)
                raise self.error(channel_node.line, f"channel must be one of {choices}, got {_quote(value)}") from None

        user = self.e164(_must(top.get("user")))

        profile_name = None
        if (profile_node := top.get("profile_name")) is not None:
            profile_name = self.text(profile_node, "profile_name")

        now = None
        if (now_node := top.get("now")) is not None:
            now = self.moment(now_node)

        llm: tuple[str, ...] = ()
        if (llm_node := top.get("llm")) is not None:
            if not isinstance(llm_node, _Seq):
                raise self.error(llm_node.line, f"llm must be a list of model outputs, got {llm_node.describe()}")
            llm = tuple(self.text(item, "each llm output", empty_ok=True) for item in llm_node.items)

        dial_status = "completed"
        if (dial_node := top.get("dial_status")) is not None:
            dial_status = self.text(dial_node, "dial_status")
            if channel is not Channel.VOICE:
                raise self.error(dial_node.line, "dial_status belongs to a call (channel: voice)")
            if dial_status not in _DIAL_STATUSES:
                raise self.error(dial_node.line, f"dial_status must be one of {', '.join(_DIAL_STATUSES)}, "
                                                 f"got {_quote(dial_status)}")

        turns_node = _must(top.get("turns"))
        if not isinstance(turns_node, _Seq):
            raise self.error(turns_node.line, f"turns must be a list of steps, got {turns_node.describe()}")
        if not turns_node.items:
            raise self.error(turns_node.line, "turns is empty; a conversation needs at least one step")
        steps: list[Step] = []
        for number, item in enumerate(turns_node.items, start=1):
            steps.append(self.step(item, number, channel, steps))

        return Transcript(
            name=name,
            channel=channel,
            user=user,
            profile_name=profile_name,
            now=now,
            llm=llm,
            turns=tuple(steps),
            path=self.path,
            line=top.line,
            dial_status=dial_status,
        )

    def e164(self, node: _Node) -> str:
        number = self.text(node, "user")
        hint = 'write it as + and country code and digits only, e.g. "+14155550123"'
        if number.lower().startswith("whatsapp:"):
            raise self.error(
                node.line,
                f"user {_quote(number)}: write the bare number; channel: whatsapp adds the prefix",
            )
        if not _E164.fullmatch(number):
            raise self.error(node.line, f"user {_quote(number)} is not an E.164 number; {hint}")
        # Possible, not valid: fictional test numbers (+44 7700 900xxx) are
        # "invalid" to libphonenumber yet exactly what transcripts should use.
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_possible_number(parsed):
            raise self.error(
                node.line,
                f"user {_quote(number)} is too short or too long for its country code; {hint}",
            )
        return number

    def moment(self, node: _Node) -> datetime:
        example = '"2026-03-02T09:00:00-05:00"'
        value = self.text(node, "now")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.error(
                node.line, f"now {_quote(value)} is not an ISO-8601 date and time, e.g. {example}"
            ) from None
        if moment.tzinfo is None:
            raise self.error(node.line, f"now {_quote(value)} needs a UTC offset, e.g. {example} or a trailing Z")
        return moment

    def step(self, node: _Node, number: int, channel: Channel, earlier: Sequence[Step]) -> Step:
        where = f"step {number}"
        if not isinstance(node, _Map):
            raise self.error(
                node.line,
                f'{where} must be a mapping with one step key (e.g. - user: "hi"), got {node.describe()}',
            )
        m = node
        self.check_keys(m, _STEP_KEYS + _STEP_EXTRA, where)
        kinds = [key for key in m.names() if key in _STEP_KEYS]
        if not kinds:
            raise self.error(m.line, f"{where} has no step key; give exactly one of {', '.join(_STEP_KEYS)}")
        if len(kinds) > 1:
            raise self.error(
                m.key_line(kinds[1]),
                f"{where} has two step keys, {kinds[0]!r} and {kinds[1]!r}; "
                "a step does exactly one thing, so split it into two steps",
            )
        kind = kinds[0]
        for extra in ("media", "location", "confidence"):
            if kind != "user" and m.get(extra) is not None:
                raise self.error(m.key_line(extra), f"{extra} belongs to a user step, not to {kind!r}")
        if channel is Channel.VOICE:
            self.voice_step(kind, m, where, earlier)
        elif kind in ("call", "digits", "hangup", "text") or m.get("confidence") is not None:
            what = kind if kind in ("call", "digits", "hangup", "text") else "confidence"
            raise self.error(m.key_line(what), f"{what} belongs to a call; set channel: voice")
        step = self.action(kind, _must(m.get(kind)), m, channel, earlier)
        if (expect_node := m.get("expect")) is not None:
            step = replace(step, expect=self.expect(expect_node, channel))
        return step

    def voice_step(self, kind: str, m: _Map, where: str, earlier: Sequence[Step]) -> None:
        """Checks for a step of a call: speech and keys need a call in progress."""
        if kind in ("button", "status") or m.get("media") is not None or m.get("location") is not None:
            what = kind if kind in ("button", "status") else ("media" if m.get("media") is not None else "location")
            raise self.error(m.key_line(what), f"{where}: {what} does not exist on a call")
        in_call = False
        for step in earlier:
            if isinstance(step, CallStep):
                in_call = True
            elif isinstance(step, HangupStep):
                in_call = False
        if kind in ("user", "digits", "hangup") and not in_call:
            raise self.error(m.line, f"{where}: no call in progress; place one first with call: true")
        if kind == "call" and in_call:
            raise self.error(m.line, f"{where}: a call is already in progress; hang up first (hangup: true)")

    def action(self, kind: str, value: _Node, m: _Map, channel: Channel, earlier: Sequence[Step]) -> Step:
        """The step itself, without its expectation."""
        if kind == "user":
            confidence = m.get("confidence")
            return UserStep(
                self.text(value, "user", empty_ok=True),
                media=self.media(m.get("media")),
                location=self.location(m.get("location")),
                confidence=None if confidence is None else self.number(confidence, "confidence", 0.0, 1.0),
                line=m.line,
            )
        if kind in ("call", "hangup"):
            if not self.flag(value, kind):
                raise self.error(value.line, f"{kind} must be true (or remove the step)")
            return CallStep(line=m.line) if kind == "call" else HangupStep(line=m.line)
        if kind == "digits":
            digits = self.text(value, "digits")
            if not re.fullmatch(r"[0-9*#]{1,20}", digits):
                raise self.error(value.line, f"digits must be keypad keys (0-9, * and #), got {_quote(digits)}")
            return DigitsStep(digits, line=m.line)
        if kind == "text":
            return TextStep(self.text(value, "text"), line=m.line)
        if kind == "button":
            return ButtonStep(self.text(value, "button"), line=m.line)
        if kind == "duplicate":
            if not self.flag(value, "duplicate"):
                raise self.error(value.line, "duplicate must be true (or remove the step)")
            if not any(isinstance(step, UserStep | ButtonStep | DigitsStep | TextStep) for step in earlier):
                raise self.error(m.line, "duplicate: there is no earlier user or button step to deliver again")
            return DuplicateStep(line=m.line)
        if kind == "advance":
            text = self.text(value, "advance")
            try:
                delta = parse_duration(text)
            except ValueError as exc:
                raise self.error(
                    value.line,
                    f"advance: {exc}; use a number and a unit: 90s, 15m, 25h, 2d (or combined, e.g. 1h30m)",
                ) from None
            return AdvanceStep(delta, line=m.line)
        if kind == "status":
            status, error_code = self.status(value, channel)
            return StatusStep(status, error_code, line=m.line)
        return RunStep(self.text(value, "run"), line=m.line)

    def media(self, node: _Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        items = node.items if isinstance(node, _Seq) else (node,)  # extension: one type without a list
        if not items:
            raise self.error(node.line, "media is empty; give content types, e.g. [image/jpeg]")
        types: list[str] = []
        for item in items:
            value = self.text(item, "media")
            if not _MIME.fullmatch(value):
                raise self.error(item.line, f"media {_quote(value)} is not a content type like image/jpeg")
            types.append(value)
        return tuple(types)

    def location(self, node: _Node | None) -> tuple[float, float] | None:
        if node is None:
            return None
        m = self.mapping(node, "location")
        self.check_keys(m, ("lat", "lon"), "location")
        for key in ("lat", "lon"):
            if m.get(key) is None:
                raise self.error(m.line, f"location needs both lat and lon; {key!r} is missing")
        return (
            self.number(_must(m.get("lat")), "lat", -90, 90),
            self.number(_must(m.get("lon")), "lon", -180, 180),
        )

    def status(self, node: _Node, channel: Channel) -> tuple[str, int | None]:
        if isinstance(node, _Scalar):  # extension: `status: delivered`
            status_node: _Node = node
            code_node = None
        else:
            m = self.mapping(node, "status")
            self.check_keys(m, ("status", "error_code"), "status")
            if m.get("status") is None:
                raise self.error(m.line, "status needs a 'status' key, e.g. {status: delivered}")
            status_node = _must(m.get("status"))
            code_node = m.get("error_code")
        status = self.text(status_node, "status")
        if status not in _STATUSES:
            close = difflib.get_close_matches(status, _STATUSES, n=1)
            guess = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(
                status_node.line,
                f"status {_quote(status)} is not a Twilio message status{guess} (one of {', '.join(_STATUSES)})",
            )
        # Twilio's own rules: ErrorCode comes only with failed/undelivered, and
        # "read" receipts exist only on WhatsApp.
        if status == "read" and channel is Channel.SMS:
            raise self.error(status_node.line, "status read only exists on WhatsApp")
        code = None
        if code_node is not None:
            code = self.integer(code_node, "error_code", minimum=1)
            if status not in ("failed", "undelivered"):
                raise self.error(
                    code_node.line,
                    f"error_code only comes with status failed or undelivered, not {status}",
                )
        return status, code

    def expect(self, node: _Node, channel: Channel) -> Expect:
        m = self.mapping(node, "expect")
        self.check_keys(m, _EXPECT_KEYS, "expect")
        if not m.entries:
            raise self.error(m.line, "expect is empty; add an expectation or remove it")

        reply = None
        if (n := m.get("reply")) is not None:
            reply = self.text(n, "reply")
        contains: tuple[str, ...] = ()
        if (n := m.get("reply_contains")) is not None:
            items = n.items if isinstance(n, _Seq) else (n,)
            if not items:
                raise self.error(n.line, "reply_contains is an empty list")
            contains = tuple(self.text(item, "reply_contains") for item in items)
        pattern = None
        if (n := m.get("reply_matches")) is not None:
            source = self.text(n, "reply_matches")
            try:
                pattern = re.compile(source)
            except re.error as exc:
                at = f" at position {exc.pos}" if exc.pos is not None else ""
                raise self.error(
                    n.line,
                    f"reply_matches {_quote(source)} is not a valid regular expression: {exc.msg}{at}",
                ) from None
        no_reply = None if (n := m.get("no_reply")) is None else self.flag(n, "no_reply")
        replies = None if (n := m.get("replies")) is None else self.integer(n, "replies", minimum=0)
        intent = None if (n := m.get("intent")) is None else self.text(n, "intent")
        template = None if (n := m.get("template")) is None else self.text(n, "template")
        media = None if (n := m.get("media")) is None else self.flag(n, "media")
        segments = None
        if (n := m.get("segments")) is not None:
            if channel is not Channel.SMS:
                raise self.error(
                    m.key_line("segments"),
                    "segments only applies to SMS; this conversation is on WhatsApp",
                )
            segments = self.integer(n, "segments", minimum=1)
        slots: tuple[tuple[str, str], ...] = ()
        if (n := m.get("slots")) is not None:
            named = self.mapping(n, "slots")
            if not named.entries:
                raise self.error(named.line, "slots is empty; name at least one slot, e.g. slots: {service: cleaning}")
            slots = tuple((key, self.text(value, f"slots.{key}")) for key, _, value in named.entries)

        # Expectations that can never hold together are a transcript bug.
        if no_reply:
            for key, given in (
                ("reply", reply is not None),
                ("reply_contains", bool(contains)),
                ("reply_matches", pattern is not None),
                ("template", template is not None),
                ("media", media is True),
                ("replies", replies not in (None, 0)),
            ):
                if given:
                    raise self.error(m.key_line(key), f"{key} contradicts no_reply: true")
        if replies == 0 and no_reply is False:
            raise self.error(m.key_line("replies"), "replies: 0 contradicts no_reply: false")

        return Expect(
            reply=reply,
            reply_contains=contains,
            reply_matches=pattern,
            no_reply=no_reply,
            replies=replies,
            intent=intent,
            template=template,
            media=media,
            segments=segments,
            slots=slots,
            line=m.line,
        )


_KNOWN_TAGS = ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")

_REQUIRED = {
    "name": "a name for this conversation, unique in the file",
    "user": 'the texter\'s number in E.164, e.g. user: "+14155550123"',
    "turns": "the list of steps",
}


def _must(node: _Node | None) -> _Node:
    # Only called after checking presence; keeps mypy precise without casts.
    assert node is not None
    return node


def _quote(text: str) -> str:
    """Double-quoted, with escapes, on one line: how we show values in messages."""
    return json.dumps(text, ensure_ascii=False)

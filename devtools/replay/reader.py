"""Reading the transcript format strictly: YAML nodes (with lines) into :mod:`devtools.replay.steps`.

We compose the YAML into nodes (not Python objects) and read them ourselves,
so that every key and value keeps its line and text values are taken as the
user wrote them (``user: yes`` sends "yes", not YAML's boolean ``True``).
Every error is a :class:`~bot.errors.TranscriptError` starting ``path:line:``.

Example::

    reader = Reader(Path("a.yaml"))
    [document] = reader.compose(text)
    transcript = reader.conversation(document)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

import phonenumbers
import yaml

from bot.errors import TranscriptError
from bot.messages import Channel
from devtools.replay.durations import parse_duration
from devtools.replay.steps import (
    AdvanceStep,
    BroadcastStep,
    ButtonStep,
    CallStep,
    DigitsStep,
    DuplicateStep,
    Expect,
    HangupStep,
    RunStep,
    StatusStep,
    Step,
    TextStep,
    Transcript,
    UserStep,
)
from devtools.replay.text import quote

_YAML_TAG = "tag:yaml.org,2002:"


@dataclass(frozen=True, slots=True)
class _Scalar:
    text: str
    tag: str  # short form for core tags ("str", "int", "null", ...), else the full tag
    line: int

    def describe(self) -> str:
        return "nothing" if self.tag == "null" else quote(self.text)


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
_STEP_KEYS = (
    "user", "button", "duplicate", "advance", "status", "run", "broadcast", "call", "digits", "hangup", "text",
)
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
    "held",
)
_HH_MM = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")
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


class Reader:
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
                raise self.error(channel_node.line, f"channel must be one of {choices}, got {quote(value)}") from None

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
                                                 f"got {quote(dial_status)}")

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
                f"user {quote(number)}: write the bare number; channel: whatsapp adds the prefix",
            )
        if not _E164.fullmatch(number):
            raise self.error(node.line, f"user {quote(number)} is not an E.164 number; {hint}")
        # Possible, not valid: fictional test numbers (+44 7700 900xxx) are
        # "invalid" to libphonenumber yet exactly what transcripts should use.
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is None or not phonenumbers.is_possible_number(parsed):
            raise self.error(
                node.line,
                f"user {quote(number)} is too short or too long for its country code; {hint}",
            )
        return number

    def moment(self, node: _Node) -> datetime:
        example = '"2026-03-02T09:00:00-05:00"'
        value = self.text(node, "now")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.error(
                node.line, f"now {quote(value)} is not an ISO-8601 date and time, e.g. {example}"
            ) from None
        if moment.tzinfo is None:
            raise self.error(node.line, f"now {quote(value)} needs a UTC offset, e.g. {example} or a trailing Z")
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
        texting_only = ("button", "status", "broadcast")
        if kind in texting_only or m.get("media") is not None or m.get("location") is not None:
            what = kind if kind in texting_only else ("media" if m.get("media") is not None else "location")
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
                raise self.error(value.line, f"digits must be keypad keys (0-9, * and #), got {quote(digits)}")
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
        if kind == "broadcast":
            return self.broadcast(value, m.line)
        return RunStep(self.text(value, "run"), line=m.line)

    def broadcast(self, node: _Node, line: int) -> BroadcastStep:
        """``broadcast: {template: welcome_back, variables: {name: Ana}}``."""
        m = self.mapping(node, "broadcast")
        self.check_keys(m, ("template", "variables"), "broadcast")
        template = m.get("template")
        if template is None:
            raise self.error(m.line, "broadcast needs a template: broadcast: {template: welcome_back}")
        variables: tuple[tuple[str, str], ...] = ()
        if (n := m.get("variables")) is not None:
            named = self.mapping(n, "broadcast.variables")
            variables = tuple((key, self.text(value, f"variables.{key}")) for key, _, value in named.entries)
        return BroadcastStep(self.text(template, "broadcast.template"), variables, line=line)

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
                raise self.error(item.line, f"media {quote(value)} is not a content type like image/jpeg")
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
                f"status {quote(status)} is not a Twilio message status{guess} (one of {', '.join(_STATUSES)})",
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
                    f"reply_matches {quote(source)} is not a valid regular expression: {exc.msg}{at}",
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

        held = None
        if (n := m.get("held")) is not None:
            held = self.text(n, "held")
            if not _HH_MM.fullmatch(held):
                raise self.error(n.line, f'held is a local time "HH:MM" (e.g. held: "08:00"), got {quote(held)}')

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
            held=held,
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

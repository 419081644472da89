"""Reading the transcript format strictly: a conversation's nodes into :mod:`devtools.replay.steps`.

The YAML nodes and their typed values are :mod:`devtools.replay.nodes`; a
step's ``expect:`` is :mod:`devtools.replay.expect_reader`. Every error is a
:class:`~bot.errors.TranscriptError` starting ``path:line:``.

Example::

    reader = Reader(Path("a.yaml"))
    [document] = reader.compose(text)
    transcript = reader.conversation(document)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import phonenumbers

from bot.messages import Channel
from devtools.replay import steps
from devtools.replay.durations import parse_duration
from devtools.replay.expect_reader import read_expect
from devtools.replay.nodes import Map, Node, NodeReader, Scalar, Seq, must
from devtools.replay.text import quote

_TOP_KEYS = ("name", "channel", "user", "profile_name", "now", "llm", "turns", "dial_status")
_STEP_KEYS = (
    "user", "button", "duplicate", "advance", "status", "run", "broadcast", "call", "digits", "hangup", "text",
)
_STEP_EXTRA = ("media", "location", "confidence", "expect")
_DIAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
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
_E164 = re.compile(r"\+[1-9]\d{6,14}")
_MIME = re.compile(r"[A-Za-z0-9][\w.+-]*/[A-Za-z0-9][\w.+-]*")


class Reader(NodeReader):
    """Reads one file's node tree into transcripts; knows the path for errors."""

    def conversation(self, node: Node) -> steps.Transcript:
        if not isinstance(node, Map):
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

        name = self.text(must(top.get("name")), "name")

        channel = Channel.SMS
        channel_node = top.get("channel")
        if channel_node is not None:
            value = self.text(channel_node, "channel")
            try:
                channel = Channel(value)
            except ValueError:
                choices = ", ".join(c.value for c in Channel)
                raise self.error(channel_node.line, f"channel must be one of {choices}, got {quote(value)}") from None

        user = self.e164(must(top.get("user")))

        profile_name = None
        if (profile_node := top.get("profile_name")) is not None:
            profile_name = self.text(profile_node, "profile_name")

        now = None
        if (now_node := top.get("now")) is not None:
            now = self.moment(now_node)

        llm: tuple[str, ...] = ()
        if (llm_node := top.get("llm")) is not None:
            if not isinstance(llm_node, Seq):
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

        turns_node = must(top.get("turns"))
        if not isinstance(turns_node, Seq):
            raise self.error(turns_node.line, f"turns must be a list of steps, got {turns_node.describe()}")
        if not turns_node.items:
            raise self.error(turns_node.line, "turns is empty; a conversation needs at least one step")
        turns: list[steps.Step] = []
        for number, item in enumerate(turns_node.items, start=1):
            turns.append(self.step(item, number, channel, turns))

        return steps.Transcript(
            name=name,
            channel=channel,
            user=user,
            profile_name=profile_name,
            now=now,
            llm=llm,
            turns=tuple(turns),
            path=self.path,
            line=top.line,
            dial_status=dial_status,
        )

    def e164(self, node: Node) -> str:
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

    def moment(self, node: Node) -> datetime:
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

    def step(self, node: Node, number: int, channel: Channel, earlier: Sequence[steps.Step]) -> steps.Step:
        where = f"step {number}"
        if not isinstance(node, Map):
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
        step = self.action(kind, must(m.get(kind)), m, channel, earlier)
        if (expect_node := m.get("expect")) is not None:
            step = replace(step, expect=read_expect(self, expect_node, channel))
        return step

    def voice_step(self, kind: str, m: Map, where: str, earlier: Sequence[steps.Step]) -> None:
        """Checks for a step of a call: speech and keys need a call in progress."""
        texting_only = ("button", "status", "broadcast")
        if kind in texting_only or m.get("media") is not None or m.get("location") is not None:
            what = kind if kind in texting_only else ("media" if m.get("media") is not None else "location")
            raise self.error(m.key_line(what), f"{where}: {what} does not exist on a call")
        in_call = False
        for step in earlier:
            if isinstance(step, steps.CallStep):
                in_call = True
            elif isinstance(step, steps.HangupStep):
                in_call = False
        if kind in ("user", "digits", "hangup") and not in_call:
            raise self.error(m.line, f"{where}: no call in progress; place one first with call: true")
        if kind == "call" and in_call:
            raise self.error(m.line, f"{where}: a call is already in progress; hang up first (hangup: true)")

    def action(self, kind: str, value: Node, m: Map, channel: Channel, earlier: Sequence[steps.Step]) -> steps.Step:
        """The step itself, without its expectation."""
        if kind == "user":
            confidence = m.get("confidence")
            return steps.UserStep(
                self.text(value, "user", empty_ok=True),
                media=self.media(m.get("media")),
                location=self.location(m.get("location")),
                confidence=None if confidence is None else self.number(confidence, "confidence", 0.0, 1.0),
                line=m.line,
            )
        if kind in ("call", "hangup"):
            if not self.flag(value, kind):
                raise self.error(value.line, f"{kind} must be true (or remove the step)")
            return steps.CallStep(line=m.line) if kind == "call" else steps.HangupStep(line=m.line)
        if kind == "digits":
            digits = self.text(value, "digits")
            if not re.fullmatch(r"[0-9*#]{1,20}", digits):
                raise self.error(value.line, f"digits must be keypad keys (0-9, * and #), got {quote(digits)}")
            return steps.DigitsStep(digits, line=m.line)
        if kind == "text":
            return steps.TextStep(self.text(value, "text"), line=m.line)
        if kind == "button":
            return steps.ButtonStep(self.text(value, "button"), line=m.line)
        if kind == "duplicate":
            if not self.flag(value, "duplicate"):
                raise self.error(value.line, "duplicate must be true (or remove the step)")
            delivered = steps.UserStep | steps.ButtonStep | steps.DigitsStep | steps.TextStep
            if not any(isinstance(step, delivered) for step in earlier):
                raise self.error(m.line, "duplicate: there is no earlier user or button step to deliver again")
            return steps.DuplicateStep(line=m.line)
        if kind == "advance":
            text = self.text(value, "advance")
            try:
                delta = parse_duration(text)
            except ValueError as exc:
                raise self.error(
                    value.line,
                    f"advance: {exc}; use a number and a unit: 90s, 15m, 25h, 2d (or combined, e.g. 1h30m)",
                ) from None
            return steps.AdvanceStep(delta, line=m.line)
        if kind == "status":
            status, error_code = self.status(value, channel)
            return steps.StatusStep(status, error_code, line=m.line)
        if kind == "broadcast":
            return self.broadcast(value, m.line)
        return steps.RunStep(self.text(value, "run"), line=m.line)

    def broadcast(self, node: Node, line: int) -> steps.BroadcastStep:
        """``broadcast: {template: welcome_back, variables: {name: Ana}}``."""
        m = self.mapping(node, "broadcast")
        self.check_keys(m, ("template", "variables"), "broadcast")
        template = m.get("template")
        if template is None:
            raise self.error(m.line, "broadcast needs a template: broadcast: {template: welcome_back}")
        variables: tuple[tuple[str, str], ...] = ()
        if (n := m.get("variables")) is not None:
            variables = self.pairs(n, "broadcast.variables")
        return steps.BroadcastStep(self.text(template, "broadcast.template"), variables, line=line)

    def media(self, node: Node | None) -> tuple[str, ...]:
        if node is None:
            return ()
        items = node.items if isinstance(node, Seq) else (node,)  # extension: one type without a list
        if not items:
            raise self.error(node.line, "media is empty; give content types, e.g. [image/jpeg]")
        types: list[str] = []
        for item in items:
            value = self.text(item, "media")
            if not _MIME.fullmatch(value):
                raise self.error(item.line, f"media {quote(value)} is not a content type like image/jpeg")
            types.append(value)
        return tuple(types)

    def location(self, node: Node | None) -> tuple[float, float] | None:
        if node is None:
            return None
        m = self.mapping(node, "location")
        self.check_keys(m, ("lat", "lon"), "location")
        for key in ("lat", "lon"):
            if m.get(key) is None:
                raise self.error(m.line, f"location needs both lat and lon; {key!r} is missing")
        return (
            self.number(must(m.get("lat")), "lat", -90, 90),
            self.number(must(m.get("lon")), "lon", -180, 180),
        )

    def status(self, node: Node, channel: Channel) -> tuple[str, int | None]:
        if isinstance(node, Scalar):  # extension: `status: delivered`
            status_node: Node = node
            code_node = None
        else:
            m = self.mapping(node, "status")
            self.check_keys(m, ("status", "error_code"), "status")
            if m.get("status") is None:
                raise self.error(m.line, "status needs a 'status' key, e.g. {status: delivered}")
            status_node = must(m.get("status"))
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

_REQUIRED = {
    "name": "a name for this conversation, unique in the file",
    "user": 'the texter\'s number in E.164, e.g. user: "+14155550123"',
    "turns": "the list of steps",
}



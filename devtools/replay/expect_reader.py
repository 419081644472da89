"""Reading a step's ``expect:`` strictly into an :class:`~devtools.replay.steps.Expect`.

Example::

    expect = read_expect(reader, node, Channel.SMS)   # from `expect: {reply_contains: booked, intent: book}`
    expect.reply_contains, expect.intent              # (('booked',), 'book')
"""

from __future__ import annotations

import re

from bot.messages import Channel
from devtools.replay.nodes import Node, NodeReader, Seq
from devtools.replay.steps import Expect
from devtools.replay.text import quote

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


def read_expect(reader: NodeReader, node: Node, channel: Channel) -> Expect:
    """The ``expect:`` mapping of a step, with expectations that contradict each other refused."""
    m = reader.mapping(node, "expect")
    reader.check_keys(m, _EXPECT_KEYS, "expect")
    if not m.entries:
        raise reader.error(m.line, "expect is empty; add an expectation or remove it")

    reply = None
    if (n := m.get("reply")) is not None:
        reply = reader.text(n, "reply")
    contains: tuple[str, ...] = ()
    if (n := m.get("reply_contains")) is not None:
        items = n.items if isinstance(n, Seq) else (n,)
        if not items:
            raise reader.error(n.line, "reply_contains is an empty list")
        contains = tuple(reader.text(item, "reply_contains") for item in items)
    pattern = None
    if (n := m.get("reply_matches")) is not None:
        source = reader.text(n, "reply_matches")
        try:
            pattern = re.compile(source)
        except re.error as exc:
            at = f" at position {exc.pos}" if exc.pos is not None else ""
            raise reader.error(
                n.line,
                f"reply_matches {quote(source)} is not a valid regular expression: {exc.msg}{at}",
            ) from None
    no_reply = None if (n := m.get("no_reply")) is None else reader.flag(n, "no_reply")
    replies = None if (n := m.get("replies")) is None else reader.integer(n, "replies", minimum=0)
    intent = None if (n := m.get("intent")) is None else reader.text(n, "intent")
    template = None if (n := m.get("template")) is None else reader.text(n, "template")
    media = None if (n := m.get("media")) is None else reader.flag(n, "media")
    segments = None
    if (n := m.get("segments")) is not None:
        if channel is not Channel.SMS:
            raise reader.error(
                m.key_line("segments"),
                "segments only applies to SMS; this conversation is on WhatsApp",
            )
        segments = reader.integer(n, "segments", minimum=1)
    slots: tuple[tuple[str, str], ...] = ()
    if (n := m.get("slots")) is not None:
        slots = reader.pairs(n, "slots")
        if not slots:
            raise reader.error(n.line, "slots is empty; name at least one slot, e.g. slots: {service: cleaning}")

    held = None
    if (n := m.get("held")) is not None:
        held = reader.text(n, "held")
        if not _HH_MM.fullmatch(held):
            raise reader.error(n.line, f'held is a local time "HH:MM" (e.g. held: "08:00"), got {quote(held)}')

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
                raise reader.error(m.key_line(key), f"{key} contradicts no_reply: true")
    if replies == 0 and no_reply is False:
        raise reader.error(m.key_line("replies"), "replies: 0 contradicts no_reply: false")

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

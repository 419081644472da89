"""The transcript extensions for what the bot starts: ``broadcast:`` steps and ``held:`` expectations
(replayed by tests/transcripts/quiet_hours/)."""

from __future__ import annotations

import pytest

from bot.errors import TranscriptError
from devtools.replay.expect import StepOutcome, check
from devtools.replay.transcript import BroadcastStep, Expect, parse_transcripts

HEAD = 'name: t\nuser: "+12125550123"\nnow: "2026-03-02T22:30:00-05:00"\n'


def test_a_broadcast_step_and_a_held_expectation_parse() -> None:
    [t] = parse_transcripts(
        HEAD + "turns:\n"
        "  - broadcast: {template: welcome_back, variables: {name: Ana}}\n"
        '    expect: {held: "08:00", no_reply: true}\n'
        "  - broadcast:\n"
        "      template: welcome_back\n",
        "t.yaml",
    )
    assert t.turns == (
        BroadcastStep("welcome_back", (("name", "Ana"),), expect=Expect(no_reply=True, held="08:00", line=6),
                      line=5),
        BroadcastStep("welcome_back", line=7),
    )
    assert t.turns[0].describe() == 'broadcast: {template: welcome_back, variables: {name: "Ana"}}'
    assert t.needs_local(t.turns[0]) is not None  # a running server (--url) cannot queue one


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ("  - broadcast: welcome_back\n", "broadcast must be a mapping"),
        ("  - broadcast: {variables: {name: Ana}}\n", "broadcast needs a template"),
        ("  - broadcast: {template: welcome_back, to: [x]}\n", "unknown key 'to'"),
        ('  - user: hi\n    expect: {held: "8am"}\n', 'held is a local time "HH:MM"'),
        ('  - user: hi\n    expect: {held: "24:00"}\n', 'held is a local time "HH:MM"'),
    ],
)
def test_bad_broadcasts_and_held_times_are_refused_naming_the_line(body: str, fragment: str) -> None:
    with pytest.raises(TranscriptError) as info:
        parse_transcripts(HEAD + "turns:\n" + body, "t.yaml")
    assert fragment in str(info.value)
    assert "t.yaml:" in str(info.value)


def test_a_broadcast_does_not_exist_on_a_call() -> None:
    with pytest.raises(TranscriptError, match="broadcast does not exist on a call"):
        parse_transcripts(HEAD + "channel: voice\nturns:\n  - call: true\n  - broadcast: {template: x}\n", "t.yaml")


def test_held_holds_only_for_a_message_held_until_that_local_time() -> None:
    held = StepOutcome(held=("until 08:00 America/New_York (Tue Mar 3)",))
    assert check(Expect(held="08:00"), held) == []
    assert check(Expect(held="09:00"), held) == [
        "expected a message held for quiet hours until 09:00, but held until 08:00 America/New_York (Tue Mar 3)"
    ]
    assert check(Expect(held="08:00"), StepOutcome()) == [
        "expected a message held for quiet hours until 08:00, but nothing was held"
    ]

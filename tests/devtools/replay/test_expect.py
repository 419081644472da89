"""Expectations against what the bot sent, and the failure text a user reads."""

from __future__ import annotations

import re

import pytest

from devtools.replay.expect import SentMessage, StepOutcome, Via, check, format_failure
from devtools.replay.transcript import Expect, parse_transcripts

USER = "+14155550123"


def sms(
    body: str,
    *,
    media: tuple[str, ...] = (),
    template: str | None = None,
    segments: int | None = None,
    via: Via = "twiml",
) -> SentMessage:
    return SentMessage(USER, body, media=media, template=template, segments=segments, via=via)


def outcome(*bodies: str, intent: str | None = None) -> StepOutcome:
    return StepOutcome(sent=tuple(sms(body) for body in bodies), intent=intent)


# -- each expectation, passing and failing -------------------------------------------


@pytest.mark.parametrize(
    ("expect", "result", "failures"),
    [
        # reply: whole text, surrounding whitespace ignored, messages joined by newlines
        (Expect(reply=" Hello! "), outcome("Hello!\n"), []),
        (Expect(reply="Hi\nBye"), outcome("Hi", "Bye"), []),
        (
            Expect(reply="Booked for 3pm"),
            outcome("Booked for 4pm"),
            ['expected reply "Booked for 3pm", but the bot sent: "Booked for 4pm" (they differ from character 12)'],
        ),
        (Expect(reply="Hi"), outcome(), ['expected reply "Hi", but the bot sent nothing']),
        # reply_contains: each, case-insensitive
        (Expect(reply_contains=("BOOKED", "3pm")), outcome("You're booked", "at 3PM"), []),
        (
            Expect(reply_contains=("booked",)),
            outcome("Sorry, that time is taken..."),
            ['expected reply containing "booked", but the bot sent: "Sorry, that time is taken..."'],
        ),
        (
            Expect(reply_contains=("a", "booked", "tue")),
            outcome("a"),
            ['expected reply containing "booked" and "tue", but the bot sent: "a"'],
        ),
        # reply_matches: re.search over the joined text
        (Expect(reply_matches=re.compile(r"(?i)tue.*3 ?pm")), outcome("ok", "Tuesday at 3pm"), []),
        (
            Expect(reply_matches=re.compile(r"^\d+$")),
            outcome("one", "two"),
            ['expected reply matching /^\\d+$/, but the bot sent: "one\\ntwo"'],
        ),
        # no_reply
        (Expect(no_reply=True), outcome(), []),
        (
            Expect(no_reply=True),
            outcome("Sure!"),
            ['expected no reply, but the bot sent 1 message: "Sure!"'],
        ),
        (
            Expect(no_reply=True),
            outcome("a", "b"),
            ['expected no reply, but the bot sent 2 messages: "a", "b"'],
        ),
        (Expect(no_reply=False), outcome("x"), []),
        (Expect(no_reply=False), outcome(), ["expected a reply, but the bot sent nothing"]),
        # replies
        (Expect(replies=2), outcome("a", "b"), []),
        (Expect(replies=1), outcome("a", "b"), ['expected 1 reply, got 2: "a", "b"']),
        (Expect(replies=2), outcome(), ["expected 2 replies, got none"]),
        # intent
        (Expect(intent="book"), outcome(intent="book"), []),
        (Expect(intent="book"), outcome(intent="fallback"), ["expected intent book, got fallback"]),
        (
            Expect(intent="book"),
            outcome(),
            ["expected intent book, got none (no intent was resolved)"],
        ),
    ],
)
def test_expectations(expect: Expect, result: StepOutcome, failures: list[str]) -> None:
    assert check(expect, result) == failures


def test_template() -> None:
    reminder = sms("Reminder: tomorrow 3pm", template="appointment_reminder", via="rest")
    other = sms("Hi", template="welcome", via="rest")
    expect = Expect(template="appointment_reminder")
    assert check(expect, StepOutcome(sent=(sms("x"), reminder))) == []
    assert check(expect, StepOutcome(sent=(sms("Reminder"),))) == [
        "expected template appointment_reminder, but the bot sent no template"
    ]
    assert check(expect, StepOutcome(sent=(other,))) == [
        "expected template appointment_reminder, but the bot sent template welcome"
    ]


def test_media() -> None:
    picture = sms("Here", media=("https://example.com/a.jpg",))
    assert check(Expect(media=True), StepOutcome(sent=(sms("a"), picture))) == []
    assert check(Expect(media=True), outcome("a")) == [
        'expected a reply with media, but no message carried media; the bot sent: "a"'
    ]
    assert check(Expect(media=False), outcome("a")) == []
    assert check(Expect(media=False), StepOutcome(sent=(sms("a"), picture))) == [
        "expected no media, but message 2 carried media"
    ]


def test_segments_bound_the_whole_step() -> None:
    two = StepOutcome(sent=(sms("a", segments=1), sms("b", segments=1)))
    assert check(Expect(segments=2), two) == []
    assert check(Expect(segments=1), two) == ["expected at most 1 SMS segment, but the reply costs 2 (1 + 1)"]
    assert check(Expect(segments=2), StepOutcome(sent=(sms("long", segments=3),))) == [
        "expected at most 2 SMS segments, but the reply costs 3"
    ]
    assert check(Expect(segments=1), outcome()) == []


def test_segments_never_pass_uncounted() -> None:
    assert check(Expect(segments=5), outcome("a")) == [
        "cannot check segments: message 1 has no segment count (the runner did not count it)"
    ]


def test_several_failures_are_all_reported() -> None:
    failures = check(Expect(reply_contains=("booked",), intent="book", replies=1), outcome())
    assert failures == [
        'expected reply containing "booked", but the bot sent nothing',
        "expected 1 reply, got none",
        "expected intent book, got none (no intent was resolved)",
    ]


def test_only_messages_to_the_texter_count() -> None:
    staff = SentMessage("+15550001111", "New booking from Ana")
    mine = SentMessage(f"whatsapp:{USER}", "Booked!")
    result = StepOutcome(sent=(staff, mine))
    assert check(Expect(replies=1, reply="Booked!"), result, user=USER) == []
    assert check(Expect(replies=1), result) == ['expected 1 reply, got 2: "New booking from Ana", "Booked!"']


def test_long_bodies_are_cut_in_failure_lines() -> None:
    [failure] = check(Expect(reply_contains=("x",)), outcome("a" * 1000))
    assert failure.endswith('…"')
    assert len(failure) < 400


# -- the failure a user reads ---------------------------------------------------------

SOURCE = """\
name: book a cleaning
user: "+14155550123"
turns:
  - user: "hi"
  - user: "book a cleaning tomorrow at 3pm"
    expect:
      reply_contains: booked
"""


def test_format_failure_names_file_line_step_and_what_was_sent() -> None:
    [t] = parse_transcripts(SOURCE, "tests/transcripts/booking.yaml")
    step = t.turns[1]
    assert step.expect is not None
    sent = (
        SentMessage(USER, "Sorry, that time is taken.\nTry 4pm?", segments=1),
        SentMessage(USER, "Reminder", template="appointment_reminder", via="rest",
                    media=("https://example.com/map.png",)),
        SentMessage("+15550001111", "New request from +14155550123", via="rest"),
    )  # fmt: skip
    failures = check(step.expect, StepOutcome(sent=sent), user=t.user)

    text = format_failure(t, 1, step, failures, sent)

    assert text == "\n".join(
        [
            'tests/transcripts/booking.yaml:5: "book a cleaning" failed at step 2 of 2',
            '  step 2: user: "book a cleaning tomorrow at 3pm"',
            '  - expected reply containing "booked", but the bot sent: '
            '"Sorry, that time is taken.\\nTry 4pm?\\nReminder"',
            "  the bot sent 3 messages:",
            '    1. [twiml, 1 segment] "Sorry, that time is taken.\\nTry 4pm?"',
            '    2. [rest, template appointment_reminder] "Reminder" + media https://example.com/map.png',
            '    3. [rest] "New request from +14155550123" (to +15550001111, not this texter; not checked)',
        ]
    )


def test_format_failure_when_nothing_was_sent() -> None:
    [t] = parse_transcripts(SOURCE, "b.yaml")
    text = format_failure(t, 0, t.turns[0], ["expected a reply, but the bot sent nothing"], ())
    assert text.splitlines() == [
        'b.yaml:4: "book a cleaning" failed at step 1 of 2',
        '  step 1: user: "hi"',
        "  - expected a reply, but the bot sent nothing",
        "  the bot sent nothing",
    ]

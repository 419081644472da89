"""Recording: ``bot chat --record`` writes a transcript that loads back and replays green."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import DEV_BOT_NUMBER
from bot.errors import TranscriptError
from bot.messages import Channel
from bot.settings import Settings
from devtools.chat import run_chat
from devtools.replay.expect import SentMessage, StepOutcome
from devtools.replay.record import RecordedTurn, dump_transcript, expectation_for
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import load_transcripts, parse_transcripts

USER = "+14155550100"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(redis_url=None)


async def chat(settings: Settings, path: Path, lines: list[str], *, whatsapp: bool = False) -> str:
    out = io.StringIO()
    await run_chat(settings, whatsapp=whatsapp, user=USER, bot=DEV_BOT_NUMBER, profile_name="Ana",
                   lines=[f"{line}\n" for line in lines], interactive=False, out=out, record=path)
    return out.getvalue()


async def test_a_recorded_sms_session_replays_green(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "first_visit.yaml"
    output = await chat(settings, path, ["hi", "what are your hours?", "STOP", "hello?"])
    assert output.splitlines()[-1] == f"recorded 4 steps to {path}"

    [transcript] = load_transcripts([path])
    assert transcript.name == "first visit"
    assert transcript.channel is Channel.SMS and transcript.user == USER
    assert transcript.now is not None and transcript.now.tzinfo is not None
    assert [step.describe() for step in transcript.turns] == [
        'user: "hi"', 'user: "what are your hours?"', 'user: "STOP"', 'user: "hello?"'
    ]
    hi, hours, stop, silence = (step.expect for step in transcript.turns)
    assert hi is not None and hi.intent == "greet" and hi.reply is not None and hi.reply.startswith("Hi! This is")
    assert hours is not None and hours.intent == "hours"
    # On SMS Twilio confirms STOP itself; the texter's one message is recorded.
    assert stop is not None and stop.intent == "opt_out"
    assert stop.reply is not None and stop.reply.startswith("You have successfully been unsubscribed")
    assert silence is not None and silence.no_reply is True

    report = await ReplayRunner(settings).run([transcript])
    assert report.ok, report.results[0].failure


async def test_a_recorded_whatsapp_session_keeps_the_profile_name(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "wa.yaml"
    await chat(settings, path, ["hello", "stop"], whatsapp=True)
    text = path.read_text(encoding="utf-8")
    assert "channel: whatsapp\n" in text and 'profile_name: "Ana"\n' in text
    assert text.startswith("# Recorded with `bot chat --record`")
    [transcript] = load_transcripts([path])
    report = await ReplayRunner(settings).run([transcript])
    assert report.ok, report.results[0].failure


async def test_a_recorded_button_press_replays_as_the_same_press(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "booking.yaml"
    out = io.StringIO()
    await run_chat(settings, whatsapp=True, user=USER, bot=DEV_BOT_NUMBER, profile_name="Ana",
                   lines=["book a cleaning tomorrow at 3pm\n", "/button 1\n"], interactive=False, out=out,
                   record=path, now=datetime.fromisoformat("2026-03-02T09:00:00-05:00"))
    assert out.getvalue().splitlines()[-1] == f"recorded 2 steps to {path}"
    assert "not recorded" not in out.getvalue()

    [transcript] = load_transcripts([path])
    assert [step.describe() for step in transcript.turns] == [
        'user: "book a cleaning tomorrow at 3pm"', 'button: "yes"'
    ]
    offer, pressed = (step.expect for step in transcript.turns)
    assert offer is not None and offer.template == "quick_reply_2"
    assert pressed is not None and pressed.reply is not None and pressed.reply.startswith("You're booked!")
    report = await ReplayRunner(settings).run([transcript])
    assert report.ok, report.results[0].failure

    # The press is what replays: pressing "No" instead books nothing, and the recording says so.
    edited = tmp_path / "edited.yaml"
    edited.write_text(path.read_text(encoding="utf-8").replace('button: "yes"', 'button: "no"'), encoding="utf-8")
    report = await ReplayRunner(settings).run(load_transcripts([edited]))
    assert not report.ok


async def test_recording_refuses_to_overwrite_a_file(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "kept.yaml"
    path.write_text("precious")
    with pytest.raises(SystemExit) as exit_info:
        await chat(settings, path, ["hi"])
    assert exit_info.value.code == 2
    assert path.read_text() == "precious"


def test_expectations_hold_exactly_what_was_sent() -> None:
    def sent(*bodies: str, media: tuple[str, ...] = (), template: str | None = None) -> StepOutcome:
        messages = tuple(SentMessage(USER, body, media=media, template=template) for body in bodies)
        return StepOutcome(sent=messages, intent="x")

    assert expectation_for(StepOutcome(), user=USER) == {"no_reply": True}
    assert expectation_for(sent("Hi!"), user=USER) == {"intent": "x", "reply": "Hi!"}
    assert expectation_for(sent("one", "two"), user=USER) == {
        "intent": "x", "replies": 2, "reply_contains": ["one", "two"]
    }
    assert expectation_for(sent("", media=("https://x/a.jpg",)), user=USER) == {
        "intent": "x", "replies": 1, "media": True
    }
    assert expectation_for(sent("Reminder", template="appointment_reminder"), user=USER) == {
        "intent": "x", "reply": "Reminder", "template": "appointment_reminder"
    }
    # Only the texter's messages count, as in replay (staff hand-off notices do not).
    staff = StepOutcome(sent=(SentMessage("+15550100199", "New hand-off"),))
    assert expectation_for(staff, user=f"whatsapp:{USER}") == {"no_reply": True}


def test_awkward_text_survives_the_round_trip() -> None:
    texts = ["yes", "null", "1", "a: b # c", 'say "hi"\\n', "tab\there", "two\nlines", "é 😀", "sep\u2028x", "\x7f"]
    turns = [
        RecordedTurn(text, StepOutcome(sent=(SentMessage(USER, f"echo {text}"),), intent="echo")) for text in texts
    ]
    dumped = dump_transcript(name="odd: name", channel=Channel.WHATSAPP, user=USER, turns=turns,
                             profile_name="Zoë", now=datetime(2026, 3, 2, 14, tzinfo=UTC))
    [transcript] = parse_transcripts(dumped)
    assert transcript.name == "odd: name" and transcript.profile_name == "Zoë"
    for text, step in zip(texts, transcript.turns, strict=True):
        assert step.describe() == f"user: {json.dumps(text, ensure_ascii=False)}"
        assert step.expect is not None and step.expect.reply == f"echo {text}"


def test_an_invalid_recording_is_refused_with_the_reason() -> None:
    turn = RecordedTurn("hi", StepOutcome())
    with pytest.raises(TranscriptError, match=r"not a valid transcript: .*not an E\.164 number"):
        dump_transcript(name="x", channel=Channel.SMS, user="4155550100", turns=[turn])
    with pytest.raises(TranscriptError, match="nothing to record"):
        dump_transcript(name="x", channel=Channel.SMS, user=USER, turns=[])

"""channel: voice transcripts: call, speech with confidence, digits, hangup, text; clear errors."""

from __future__ import annotations

import pytest

from bot.errors import TranscriptError
from bot.messages import Channel
from devtools.replay.transcript import CallStep, DigitsStep, HangupStep, TextStep, UserStep, parse_transcripts

HEAD = 'name: t\nchannel: voice\nuser: "+14155550123"\n'


def error(text: str) -> str:
    with pytest.raises(TranscriptError) as info:
        parse_transcripts(text, "t.yaml")
    return str(info.value)


def test_a_call_parses_into_its_steps() -> None:
    [t] = parse_transcripts(HEAD + "dial_status: no-answer\nturns:\n"
                            '  - text: "book a cleaning"\n  - call: true\n  - user: "hours?"\n    confidence: 0.4\n'
                            '  - digits: "1"\n  - user: ""\n  - hangup: true\n  - call: true\n', "t.yaml")
    assert t.channel is Channel.VOICE and t.dial_status == "no-answer"
    assert [type(s) for s in t.turns] == [TextStep, CallStep, UserStep, DigitsStep, UserStep, HangupStep, CallStep]
    speech = t.turns[2]
    assert isinstance(speech, UserStep) and speech.confidence == 0.4
    assert speech.describe() == 'user: "hours?", confidence: 0.4'
    assert t.needs_local(t.turns[0]) is not None  # calls replay in-process only


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (HEAD + 'turns:\n  - user: "hi"\n', "no call in progress; place one first with call: true"),
        (HEAD + 'turns:\n  - call: true\n  - call: true\n', "a call is already in progress"),
        (HEAD + 'turns:\n  - call: true\n  - digits: "12a"\n', "digits must be keypad keys"),
        (HEAD + 'turns:\n  - call: true\n  - button: "yes"\n', "button does not exist on a call"),
        (HEAD + 'turns:\n  - call: true\n  - user: "x"\n    confidence: 1.5\n', "confidence must be a number from 0"),
        (HEAD + 'dial_status: maybe\nturns:\n  - call: true\n', "dial_status must be one of completed"),
        ('name: t\nuser: "+14155550123"\nturns:\n  - call: true\n', "call belongs to a call; set channel: voice"),
        ('name: t\nuser: "+14155550123"\nturns:\n  - user: "x"\n    confidence: 0.5\n',
         "confidence belongs to a call"),
    ],
)
def test_mistakes_are_named(text: str, fragment: str) -> None:
    assert fragment in error(text)

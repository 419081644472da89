"""The transcript format: what parses, into what, and how errors name file and line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.errors import TranscriptError
from bot.messages import Channel
from devtools.replay.transcript import (
    AdvanceStep,
    ButtonStep,
    DuplicateStep,
    Expect,
    RunStep,
    StatusStep,
    Transcript,
    UserStep,
    format_duration,
    load_transcripts,
    parse_duration,
    parse_transcripts,
    select,
)

DOCS = Path(__file__).resolve().parents[3] / "docs" / "transcripts.md"

HEAD = 'name: t\nuser: "+14155550123"\n'


def parse_one(text: str) -> Transcript:
    [transcript] = parse_transcripts(text, "t.yaml")
    return transcript


def steps(body: str, head: str = HEAD) -> Transcript:
    return parse_one(head + "turns:\n" + body)


def error(text: str, path: str = "t.yaml") -> str:
    with pytest.raises(TranscriptError) as info:
        parse_transcripts(text, path)
    return str(info.value)


# -- the spec's own example ----------------------------------------------------


def test_the_spec_example_parses_exactly(tmp_path: Path) -> None:
    example = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert example is not None
    file = tmp_path / "spec.yaml"
    file.write_text(example.group(1))

    [t] = load_transcripts([file])

    assert t.name == "book a cleaning, then opt out"
    assert t.channel is Channel.SMS
    assert t.user == "+14155550123"
    assert t.profile_name == "Ana"
    assert t.now == datetime(2026, 3, 2, 9, tzinfo=timezone(timedelta(hours=-5)))
    assert t.llm == ("We open at 8am on weekdays.",)
    assert (t.path, t.line) == (file, 1)
    assert [type(s) for s in t.turns] == [
        UserStep, UserStep, ButtonStep, AdvanceStep, RunStep, UserStep, UserStep,
    ]  # fmt: skip
    hi, book, button, advance, run, stop, hello = t.turns
    assert hi == UserStep("hi", expect=Expect(reply_contains=("book",), line=12), line=10)
    assert book.expect is not None
    assert book.expect.intent == "book"
    assert book.expect.reply_matches == re.compile("(?i)tue.*3(:00)? ?pm")
    assert button == ButtonStep("yes", expect=Expect(reply_contains=("booked",), line=18), line=17)
    assert advance == AdvanceStep(timedelta(hours=23), line=19)
    assert run == RunStep("reminders", expect=Expect(template="appointment_reminder", line=21), line=20)
    assert isinstance(stop, UserStep)
    assert stop.text == "STOP"
    assert hello.expect == Expect(no_reply=True, line=25)


# -- every step type -----------------------------------------------------------


def test_user_step_with_media_and_location() -> None:
    t = steps(
        "  - user: 'here'\n"
        "    media: [image/jpeg, application/pdf]\n"
        "    location: {lat: 37.77, lon: -122}\n"
        "  - user: ''\n"
        "    media: image/png\n"
    )
    assert t.turns == (
        UserStep("here", media=("image/jpeg", "application/pdf"), location=(37.77, -122.0), line=4),
        UserStep("", media=("image/png",), line=7),
    )


def test_button_on_whatsapp_with_profile_name() -> None:
    t = steps("  - button: confirm\n", head=HEAD + "channel: whatsapp\nprofile_name: Ana\n")
    assert t.channel is Channel.WHATSAPP
    assert t.profile_name == "Ana"
    assert t.turns == (ButtonStep("confirm", line=6),)


def test_duplicate_advance_status_run() -> None:
    t = steps(
        "  - user: hi\n"
        "  - duplicate: true\n"
        "    expect: {no_reply: true}\n"
        "  - advance: 1h30m\n"
        "  - status: {status: undelivered, error_code: 30003}\n"
        "  - status: delivered\n"
        "  - run: reminders\n"
    )
    assert t.turns[1:] == (
        DuplicateStep(expect=Expect(no_reply=True, line=6), line=5),
        AdvanceStep(timedelta(hours=1, minutes=30), line=7),
        StatusStep("undelivered", 30003, line=8),
        StatusStep("delivered", line=9),
        RunStep("reminders", line=10),
    )


def test_every_expectation_key() -> None:
    t = steps(
        "  - user: hi\n"
        "    expect:\n"
        "      reply: ' Hello! '\n"
        "      reply_contains: [hello, '!']\n"
        "      reply_matches: '^H\\w+'\n"
        "      replies: 1\n"
        "      intent: greet\n"
        "      template: welcome\n"
        "      media: false\n"
        "      segments: 2\n"
        "      no_reply: false\n"
    )
    assert t.turns[0].expect == Expect(
        reply=" Hello! ",
        reply_contains=("hello", "!"),
        reply_matches=re.compile(r"^H\w+"),
        no_reply=False,
        replies=1,
        intent="greet",
        template="welcome",
        media=False,
        segments=2,
        line=6,
    )


def test_text_is_taken_as_written() -> None:
    # Unquoted, YAML would read these as a boolean, an int and a number without its +.
    t = parse_one("name: 1\nuser: +14155550123\nllm: [yes, 2]\nturns:\n  - user: yes\n  - button: 1\n")
    assert t.name == "1"
    assert t.user == "+14155550123"
    assert t.llm == ("yes", "2")
    assert [s.describe() for s in t.turns] == ['user: "yes"', 'button: "1"']


def test_now_accepts_z_and_keeps_the_offset() -> None:
    t = parse_one(HEAD + "now: 2026-03-02T14:00:00Z\nturns: [{user: hi}]\n")
    assert t.now == datetime(2026, 3, 2, 14, tzinfo=UTC)


def test_flow_style_steps_carry_their_line() -> None:
    t = steps("  - {user: hi, expect: {replies: 1}}\n\n  - {run: digest}\n")
    assert [s.line for s in t.turns] == [4, 6]


@pytest.mark.parametrize(
    ("text", "delta"),
    [
        ("90s", timedelta(seconds=90)),
        ("15m", timedelta(minutes=15)),
        ("25h", timedelta(hours=25)),
        ("2d", timedelta(days=2)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    ],
)
def test_durations(text: str, delta: timedelta) -> None:
    assert parse_duration(text) == delta
    assert parse_duration(format_duration(delta)) == delta


def test_format_duration_uses_the_largest_units() -> None:
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(hours=48)) == "2d"


# -- multi-document files --------------------------------------------------------


def test_multi_document_file(tmp_path: Path) -> None:
    file = tmp_path / "two.yaml"
    file.write_text(
        "---\n"
        "name: first\nuser: '+14155550123'\nturns:\n  - user: hi\n"
        "---\n"
        "# the second conversation\n"
        "name: second\nuser: '+14155550124'\nchannel: whatsapp\nturns:\n  - button: ok\n"
        "---\n"
    )
    first, second = load_transcripts([file])
    assert (first.name, first.line, first.turns[0].line) == ("first", 2, 5)
    assert (second.name, second.line, second.channel) == ("second", 8, Channel.WHATSAPP)
    assert second.turns[0].line == 12
    assert second.origin == f"{file}:8"


def test_names_must_be_unique_in_a_file() -> None:
    doc = HEAD + "turns: [{user: hi}]\n"
    message = error(doc + "---\n" + doc)
    assert message == (
        't.yaml:5: name "t" is already used by the conversation at line 1; names must be unique in a file'
    )


# -- errors name the file and the line ---------------------------------------------

TURNS = HEAD + "turns:\n"


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        # unknown keys, at every level
        (HEAD + "turn: []\n", 3, "unknown key 'turn' in the conversation; did you mean 'turns'?"),
        (TURNS + "  - user: hi\n    expct: {}\n", 5, "unknown key 'expct' in step 1; did you mean 'expect'?"),
        (
            TURNS + "  - user: hi\n    expect:\n      repl: hi\n",
            6,
            "unknown key 'repl' in expect; did you mean 'reply'?",
        ),
        (TURNS + "  - user: hi\n    location: {lat: 1, lng: 2}\n", 5, "unknown key 'lng' in location"),
        (TURNS + "  - status: {status: failed, code: 1}\n", 4, "unknown key 'code' in status"),
        # required keys
        ("name: t\nturns: [{user: hi}]\n", 1, "the conversation has no 'user' (the texter's number in E.164"),
        ('user: "+14155550123"\nturns: [{user: hi}]\n', 1, "the conversation has no 'name'"),
        (HEAD, 1, "the conversation has no 'turns'"),
        # E.164
        ('name: t\nuser: "4155550123"\nturns: [{user: hi}]\n', 2, 'user "4155550123" is not an E.164 number'),
        ('name: t\nuser: "+1 415 555 0123"\nturns: [{user: hi}]\n', 2, "is not an E.164 number"),
        ('name: t\nuser: "+1415555012"\nturns: [{user: hi}]\n', 2, "too short or too long for its country code"),
        ('name: t\nuser: "whatsapp:+14155550123"\nturns: [{user: hi}]\n', 2, "write the bare number"),
        # steps
        (TURNS + "  - user: hi\n    button: yes\n", 5, "step 1 has two step keys, 'user' and 'button'"),
        (TURNS + "  - expect: {replies: 1}\n", 4, "step 1 has no step key; give exactly one of user, button"),
        (TURNS + "  - hi\n", 4, "step 1 must be a mapping with one step key"),
        (TURNS + "  - button: yes\n    media: [image/png]\n", 5, "media belongs to a user step, not to 'button'"),
        (TURNS + "  - user: hi\n    media: [jpeg]\n", 5, 'media "jpeg" is not a content type'),
        (TURNS + "  - user: hi\n    location: {lat: 91, lon: 0}\n", 5, "lat must be a number from -90 to 90"),
        (TURNS + "  - user: hi\n    location: {lat: 1}\n", 5, "location needs both lat and lon"),
        (TURNS + "  - user:\n", 4, "user needs a value"),
        (TURNS + "  - button: ''\n", 4, "button must not be empty"),
        (TURNS + "  - duplicate: true\n", 4, "no earlier user or button step"),
        (TURNS + "  - user: hi\n  - duplicate: false\n", 5, "duplicate must be true"),
        (TURNS + "  - advance: 23 hours\n", 4, "advance: '23 hours' is not a duration; use a number and a unit"),
        (TURNS + "  - advance: 90\n", 4, "is not a duration"),
        (TURNS + "  - advance: 30m1h\n", 4, "is not a duration"),
        (TURNS + "  - advance: 0s\n", 4, "the clock only moves forward"),
        (TURNS + "  - status: deliverd\n", 4, "is not a Twilio message status; did you mean 'delivered'?"),
        (TURNS + "  - status: {status: delivered, error_code: 30003}\n", 4, "error_code only comes with"),
        (TURNS + "  - status: read\n", 4, "status read only exists on WhatsApp"),
        (TURNS + "  - status: {error_code: 1}\n", 4, "status needs a 'status' key"),
        (TURNS + "  - run: [a]\n", 4, "run must be text, got a list"),
        # expectations
        (
            TURNS + "  - user: hi\n    expect:\n      reply_matches: '(ab'\n",
            6,
            'reply_matches "(ab" is not a valid regular expression: missing ), unterminated subpattern at position 0',
        ),
        (
            TURNS + "  - user: hi\n    expect: {no_reply: yes, reply_contains: hi}\n",
            5,
            "reply_contains contradicts no_reply: true",
        ),
        (TURNS + "  - user: hi\n    expect: {no_reply: 'true'}\n", 5, 'no_reply must be true or false, got "true"'),
        (TURNS + "  - user: hi\n    expect: {replies: -1}\n", 5, "replies must be a whole number of at least 0"),
        (TURNS + "  - user: hi\n    expect: {replies: 0x2}\n", 5, "replies must be a whole number"),
        (TURNS + "  - user: hi\n    expect: {segments: 0}\n", 5, "segments must be a whole number of at least 1"),
        (TURNS + "  - user: hi\n    expect: {reply_contains: []}\n", 5, "reply_contains is an empty list"),
        (TURNS + "  - user: hi\n    expect: {}\n", 5, "expect is empty"),
        (TURNS + "  - user: hi\n    expect:\n", 5, "expect must be a mapping of keys"),
        (
            HEAD + "channel: whatsapp\nturns:\n  - user: hi\n    expect:\n      segments: 1\n",
            7,
            "segments only applies to SMS",
        ),
        # top level
        (HEAD + "channel: mms\nturns: [{user: hi}]\n", 3, 'channel must be one of sms, whatsapp, voice, got "mms"'),
        (HEAD + "now: 2026-03-02T09:00:00\nturns: [{user: hi}]\n", 3, "needs a UTC offset"),
        (HEAD + "now: tomorrow\nturns: [{user: hi}]\n", 3, "is not an ISO-8601 date and time"),
        (HEAD + "llm: one\nturns: [{user: hi}]\n", 3, "llm must be a list of model outputs"),
        (HEAD + "turns: []\n", 3, "turns is empty"),
        (HEAD + "turns: {user: hi}\n", 3, "turns must be a list of steps, got a mapping"),
        ("- name: t\n", 1, "a conversation must be a mapping with name, user and turns, got a list"),
        ("# only a comment\n", 1, "no conversation in this file"),
        # YAML itself
        (HEAD + "turns:\n  - user: 'hi\n", 5, "YAML syntax error: found unexpected end of stream"),
        (HEAD + "turns:\n  - user: hi\n   expect: {}\n", 5, "YAML syntax error"),
        (TURNS + '  - user: hi\n    expect: {reply_matches: "\\d"}\n', 5, "write regular expressions in single quotes"),
        (HEAD + "turns:\n\t- user: hi\n", 4, "YAML does not allow tabs"),
        (HEAD + "name: u\nturns: [{user: hi}]\n", 3, "duplicate key 'name' (first given at line 1)"),
        (HEAD + "turns: !!set {a}\n", 3, "unsupported YAML tag"),
        (HEAD + "turns: &a [*a]\n", 3, "an alias refers to itself"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, fragment: str) -> None:
    message = error(text, "dir/t.yaml")
    assert message.startswith(f"dir/t.yaml:{line}: "), message
    assert fragment in message, message


def test_unknown_key_lists_what_is_allowed() -> None:
    message = error(TURNS + "  - user: hi\n    expect: {zzz: hi}\n")
    assert message == (
        "t.yaml:5: unknown key 'zzz' in expect (allowed: reply, reply_contains, "
        "reply_matches, no_reply, replies, intent, template, media, segments, slots, held)"
    )


def test_the_first_error_in_the_second_document_names_its_own_line() -> None:
    message = error(HEAD + "turns: [{user: hi}]\n---\n" + HEAD + "turns:\n  - usr: hi\n")
    assert message.startswith("t.yaml:8: unknown key 'usr' in step 1")


def test_anchors_and_aliases_still_work() -> None:
    t = steps("  - &hi {user: hi, expect: {replies: 1}}\n  - *hi\n")
    assert t.turns[0] == t.turns[1]


# -- files and folders -----------------------------------------------------------------

CONVERSATION = "name: {name}\nuser: '+14155550123'\nturns: [{{user: hi}}]\n"


def write(path: Path, name: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(CONVERSATION.format(name=name))
    return path


def test_folders_are_read_recursively_sorted_and_once(tmp_path: Path) -> None:
    write(tmp_path / "b.yml", "b")
    write(tmp_path / "a.yaml", "a")
    write(tmp_path / "sub" / "c.yaml", "c")
    write(tmp_path / ".hidden" / "d.yaml", "hidden")
    write(tmp_path / "notes.txt", "not a transcript")
    loaded = load_transcripts([tmp_path, tmp_path / "a.yaml", str(tmp_path / "sub")])
    assert [t.name for t in loaded] == ["a", "b", "c"]


def test_a_file_is_read_whatever_its_extension(tmp_path: Path) -> None:
    assert [t.name for t in load_transcripts([write(tmp_path / "x.txt", "x")])] == ["x"]


def test_missing_path_and_empty_folder_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TranscriptError, match="no such file or folder"):
        load_transcripts([tmp_path / "nope.yaml"])
    with pytest.raises(TranscriptError, match=r"no \*\.yaml or \*\.yml transcript files"):
        load_transcripts([tmp_path])


def test_errors_from_files_name_the_path(tmp_path: Path) -> None:
    file = tmp_path / "bad.yaml"
    file.write_text(HEAD + "turns:\n  - user: hi\n    expect: {reply: hi, bogus: 1}\n")
    with pytest.raises(TranscriptError) as info:
        load_transcripts([file])
    assert str(info.value).startswith(f"{file}:5: unknown key 'bogus' in expect")


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    file = tmp_path / "latin1.yaml"
    file.write_bytes(b"name: t\nuser: '+14155550123'\nturns: [{user: caf\xe9}]\n")
    with pytest.raises(TranscriptError, match=r"latin1\.yaml:3: not valid UTF-8"):
        load_transcripts([file])


def test_control_characters_are_a_yaml_error_with_a_line() -> None:
    message = error(HEAD + 'turns: [{user: "a\x07"}]\n')
    assert message.startswith("t.yaml:3: YAML syntax error: the control character U+0007")


def test_select_matches_name_or_file_name_case_insensitively(tmp_path: Path) -> None:
    write(tmp_path / "booking.yaml", "book a cleaning")
    write(tmp_path / "optout.yaml", "STOP works")
    loaded = load_transcripts([tmp_path])
    assert [t.name for t in select(loaded, "stop")] == ["STOP works"]
    assert [t.name for t in select(loaded, "BOOKING.y")] == ["book a cleaning"]
    assert [t.name for t in select(loaded, "CLEAN")] == ["book a cleaning"]
    assert select(loaded, "nothing") == []
    assert select(loaded, None) == loaded
    assert select(loaded, "") == loaded


# -- what --url can replay -------------------------------------------------------------------


def test_needs_local_per_step() -> None:
    t = steps(
        "  - user: hi\n  - button: ok\n  - duplicate: true\n  - advance: 2d\n"
        "  - run: reminders\n  - status: delivered\n"
    )
    reasons = [t.needs_local(step) for step in t.turns]
    assert reasons == [
        None,
        None,
        None,
        "needs the frozen clock (advance: 2d)",
        "needs in-process replay to run a scheduled job (run: reminders)",
        "needs the SID of the bot's last outbound message, seen only in-process (status)",
    ]


def test_now_and_llm_make_every_step_local() -> None:
    frozen = parse_one(HEAD + "now: '2026-03-02T09:00:00-05:00'\nturns: [{user: hi}]\n")
    assert frozen.needs_local(frozen.turns[0]) == "needs the frozen clock (now: 2026-03-02T09:00:00-05:00)"
    scripted = parse_one(HEAD + "llm: ['We open at 8.']\nturns: [{user: hi}]\n")
    assert scripted.needs_local(scripted.turns[0]) == "needs the scripted model (llm)"
    unscripted = parse_one(HEAD + "llm: []\nturns: [{user: hi}]\n")
    assert unscripted.needs_local(unscripted.turns[0]) is None


def test_describe_reads_like_the_source() -> None:
    t = steps(
        "  - user: 'say \"hi\"'\n    media: [image/png]\n    location: {lat: 1.5, lon: 2}\n"
        "  - status: {status: failed, error_code: 30007}\n"
    )
    assert [s.describe() for s in t.turns] == [
        'user: "say \\"hi\\"", media: [image/png], location: {lat: 1.5, lon: 2}',
        "status: {status: failed, error_code: 30007}",
    ]

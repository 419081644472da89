"""The CLI: `bot chat` goes through the signed webhook path; bad settings stop start-up."""

from __future__ import annotations

import io
import re

import pytest
from typer.testing import CliRunner

from bot.cli import DEV_BOT_NUMBER, app, dev_settings
from devtools.chat import run_chat


async def test_chat_talks_to_the_bot_over_sms_and_whatsapp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    await run_chat(dev_settings(), whatsapp=False, user="+14155550100", bot=DEV_BOT_NUMBER,
                   profile_name=None, lines=["hi\n", "STOP\n", "hello\n"], interactive=False, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("bot> Hi!")
    # On SMS Twilio confirms STOP itself, the bot stays silent; opted out: silence.
    assert lines[1:] == ["twilio> You have successfully been unsubscribed. You will not receive any more "
                         "messages from this number. Reply START to resubscribe.", "bot> (no reply)"]

    out = io.StringIO()
    await run_chat(dev_settings(), whatsapp=True, user="+14155550100", bot=DEV_BOT_NUMBER,
                   profile_name="Ana", lines=["hi\n", "stop\n"], interactive=False, out=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("bot> Hi Ana!")
    assert "unsubscribed" in lines[1]



async def test_chat_voice_places_a_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    await run_chat(dev_settings(), whatsapp=False, user="+14155550111", bot=DEV_BOT_NUMBER, profile_name=None,
                   lines=["what are your hours\n", "#2\n", "/hangup\n", "never said\n"], interactive=False,
                   out=out, voice=True)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("bot> Hi! This is Bright Smile Dental.")
    assert lines[1].startswith("bot> To book an appointment, press 1.")
    assert lines[2].startswith("bot> Bright Smile Dental hours: Monday to Friday 8 AM to 5 PM")
    assert lines[3] == "bot> I'm not sure what that answers. I can book, reschedule or cancel an appointment, " \
        "or tell you our hours, address and prices."
    assert lines[-1] == "(call ended)" and not any("never said" in line for line in lines)


def test_serve_refuses_bad_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.delenv("TWILIO_ACCOUNT_SID", raising=False)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "x")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "TWILIO_ACCOUNT_SID: missing" in result.output


def test_a_missing_project_directory_is_one_clear_line(tmp_path: object) -> None:
    import subprocess
    import sys
    from pathlib import Path

    bot = Path(sys.executable).parent / "bot"
    done = subprocess.run([str(bot), "chat"], input="hi\n", capture_output=True, text=True, cwd=str(tmp_path),
                          timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().startswith("bot: template directory prompts does not exist")
    assert "PROMPTS_DIR" in done.stderr and "Traceback" not in done.stderr


def test_chat_now_freezes_the_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    # Saturday evening in New York: closed until Monday 8am, on every run.
    result = CliRunner().invoke(app, ["chat", "--now", "2026-03-07T18:00:00-05:00"], input="are you open now?\n")
    assert result.exit_code == 0, result.output
    assert "bot> We're closed right now; we open Monday 8am." in result.output
    sunday = CliRunner().invoke(app, ["chat", "--now", "2026-03-08T15:00:00Z"], input="r u open today\n")
    assert "we open tomorrow 8am" in sunday.output


@pytest.mark.parametrize("value", ["2026-03-07T18:00", "next saturday"])
def test_chat_now_needs_an_iso_time_with_an_offset(value: str) -> None:
    result = CliRunner().invoke(app, ["chat", "--now", value], input="hi\n")
    assert result.exit_code == 2
    assert "--now" in result.output


def test_help_shows_no_type_noise_and_nothing_cut_at_80_columns() -> None:
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands]
    assert {"serve", "chat", "replay", "broadcast"} <= set(names)
    for args in [["--help"], *([name, "--help"] for name in names)]:
        result = CliRunner().invoke(app, args, env={"COLUMNS": "80", "TERM": "dumb"}, color=False)
        assert result.exit_code == 0, result.output
        text = result.output
        assert max(len(line) for line in text.splitlines()) <= 80, args
        # Types in angle brackets (`--help <bool>`, `<list[Path]>`) and `{PATH}...` are noise; "…" is cut text.
        assert not re.search(r"<[a-zA-Z\[\]]+>|\{[A-Z]+\}|…", text), (args, text)


async def test_chat_shows_whatsapp_buttons_and_template_names_and_presses_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import datetime

    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    await run_chat(dev_settings(), whatsapp=True, user="+14155550100", bot=DEV_BOT_NUMBER, profile_name="Ana",
                   lines=["book a cleaning tomorrow\n", "/button 1\n", "/button 7\n", "/button x\n"],
                   interactive=False, out=out, now=datetime.fromisoformat("2026-03-02T09:00:00-05:00"))
    lines = out.getvalue().splitlines()
    # The question and its buttons, as the WhatsApp user sees them (no bare "I have:").
    assert lines[0].startswith("bot> [template quick_reply_3] What time on Tue, Mar 3")
    assert lines[1].strip().split("   ")[0] == "[8:00 AM] [10:30 AM] [1:00 PM]"
    # /button 1 pressed "8:00 AM": the bot asks to confirm that time, with Yes/No buttons.
    assert lines[2] == "bot> [template quick_reply_2] Book a cleaning on *Tue, Mar 3 at 8:00 AM*?"
    assert lines[3].strip().split("   ")[0] == "[Yes] [No]"
    assert lines[4] == "error: there are 2 buttons; /button 1 to /button 2"
    assert lines[5] == "error: /button N presses the Nth button shown, e.g. /button 1"


async def test_chat_shows_a_whatsapp_list_picker_and_picks_from_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    await run_chat(dev_settings(), whatsapp=True, user="+14155550101", bot=DEV_BOT_NUMBER, profile_name="Ana",
                   lines=["i want to book\n", "/button 3\n"],
                   interactive=False, out=out, now=datetime.fromisoformat("2026-03-02T09:00:00-05:00"))
    lines = out.getvalue().splitlines()
    # Four services: more than WhatsApp's three quick replies, so a list opened by its button.
    assert lines[0] == "bot> [template list_picker_4] Sure! Which service would you like?"
    assert lines[1].strip() == "[Choose one] (/button N picks one)"
    assert [line.strip() for line in lines[2:6]] == ["1. Cleaning", "2. Checkup", "3. Whitening", "4. Filling"]
    # /button 3 picked Whitening from the list.
    assert lines[6] == "bot> What day would you like to come in for your whitening?"


async def test_chat_on_sms_shows_numbered_options_and_no_template_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime

    monkeypatch.delenv("REDIS_URL", raising=False)
    out = io.StringIO()
    await run_chat(dev_settings(), whatsapp=False, user="+14155550100", bot=DEV_BOT_NUMBER, profile_name=None,
                   lines=["book a cleaning tomorrow\n", "/button 1\n"], interactive=False, out=out,
                   now=datetime.fromisoformat("2026-03-02T09:00:00-05:00"))
    text = out.getvalue()
    assert "1. 8:00 AM" in text or "1) 8:00 AM" in text, text
    assert "[template" not in text
    assert "error: no buttons are on offer" in text  # SMS has no buttons to press

"""`bot connect` sets the number's URLs through the official SDK; `--check` only reads and reports."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app
from tests.bot.golive.conftest import Account
from tests.conftest import BOT_NUMBER, PUBLIC_URL

MESSAGES = f"{PUBLIC_URL}/twilio/messages"


def run(account: Account, *args: str, **env: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(app, ["connect", *args], env=account.env(**env))
    return result.exit_code, result.output.splitlines()


def test_connect_sets_sms_and_voice_urls_and_prints_what_changed(account: Account) -> None:
    code, lines = run(account, "--number", BOT_NUMBER, "--voice", "--fallback-url", "https://fallback.example.com/t")
    assert code == 0, lines
    number = account.sim.account.number_by_phone(BOT_NUMBER)
    assert number is not None
    assert number.sms_url == MESSAGES and number.sms_method == "POST"
    assert number.voice_url == f"{PUBLIC_URL}/twilio/voice"
    assert number.status_callback == f"{PUBLIC_URL}/twilio/voice/status"
    assert number.sms_fallback_url == number.voice_fallback_url == "https://fallback.example.com/t"
    assert f"changed   number {BOT_NUMBER} SMS URL (A message comes in): https://old-host.example.com/sms -> " \
           f"{MESSAGES}" in lines
    assert any(line.startswith("changed") and "voice URL" in line for line in lines)

    # Run again: nothing left to change, and --check agrees.
    code, lines = run(account, "--number", BOT_NUMBER, "--voice", "--fallback-url", "https://fallback.example.com/t")
    assert code == 0 and not any(line.startswith("changed") for line in lines)
    code, lines = run(account, "--number", BOT_NUMBER, "--voice", "--check")
    assert code == 0, lines
    assert not [line for line in lines if line.startswith(("mismatch", "problem"))]


def test_check_reports_a_wrong_url_and_a_missing_fallback_without_changing_anything(account: Account) -> None:
    code, lines = run(account, "--number", BOT_NUMBER, "--no-voice", "--check")
    assert code == 1
    assert f"mismatch  number {BOT_NUMBER} SMS URL (A message comes in): https://old-host.example.com/sms, " \
           f"should be {MESSAGES}" in lines
    assert any(line.startswith("problem") and "no SMS fallback URL" in line for line in lines)
    number = account.sim.account.number_by_phone(BOT_NUMBER)
    assert number is not None and number.sms_url == "https://old-host.example.com/sms"  # only read


def test_check_reports_a_whatsapp_sender_that_does_not_point_at_the_bot(account: Account) -> None:
    account.sim.account.add_whatsapp_sender(BOT_NUMBER, callback_url="https://elsewhere.example.com/wa")
    run(account, "--number", BOT_NUMBER, "--no-voice", "--fallback-url", "https://fallback.example.com/t")
    code, lines = run(account, "--number", BOT_NUMBER, "--no-voice", "--check")
    assert code == 1
    problems = [line for line in lines if line.startswith("problem")]
    assert len(problems) == 1
    assert f"WhatsApp sender whatsapp:{BOT_NUMBER} sends messages to https://elsewhere.example.com/wa" in problems[0]

    account.sim.account.senders[next(iter(account.sim.account.senders))].callback_url = MESSAGES
    code, lines = run(account, "--number", BOT_NUMBER, "--no-voice", "--check")
    assert code == 0, lines
    assert f"ok        WhatsApp sender whatsapp:{BOT_NUMBER} points at the bot" in lines


def test_messaging_service_gets_the_inbound_and_status_urls(account: Account) -> None:
    service = account.sim.account.add_service(inbound_request_url="https://old.example.com/in",
                                              use_inbound_webhook_on_number=True)
    code, lines = run(account, "--messaging-service", service.sid, "--fallback-url", "https://fb.example.com/x")
    assert code == 0, lines
    assert service.inbound_request_url == MESSAGES
    assert service.status_callback == f"{PUBLIC_URL}/twilio/status"
    assert service.fallback_url == "https://fb.example.com/x"
    assert service.use_inbound_webhook_on_number is False
    code, lines = run(account, "--messaging-service", service.sid, "--check")
    assert code == 0, lines


def test_url_option_overrides_public_base_url_and_warns_to_match(account: Account) -> None:
    code, lines = run(account, "--number", BOT_NUMBER, "--no-voice", "--url", "https://tunnel.example.net")
    number = account.sim.account.number_by_phone(BOT_NUMBER)
    assert number is not None and number.sms_url == "https://tunnel.example.net/twilio/messages"
    assert any(line.startswith("note") and "PUBLIC_BASE_URL" in line for line in lines)
    assert code == 1  # no fallback URL yet: reported as a problem


def test_unknown_number_and_bad_url_are_one_clear_line(account: Account) -> None:
    result = CliRunner().invoke(app, ["connect", "--number", "+15005550099", "--no-voice"], env=account.env())
    assert result.exit_code == 2
    assert "+15005550099 is not a number of this Twilio account" in result.output
    result = CliRunner().invoke(app, ["connect", "--number", BOT_NUMBER, "--url", "https://x.example.com/path"],
                                env=account.env())
    assert result.exit_code == 2
    assert "no path" in result.output
    result = CliRunner().invoke(app, ["connect", "--number", BOT_NUMBER, "--no-voice"],
                                env=account.env(TWILIO_AUTH_TOKEN="wrong"))
    assert result.exit_code == 2
    assert "Twilio refused" in result.output

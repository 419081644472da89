"""``bot consent``: export, show, staff opt-out/opt-in, clear-unreachable, help-text, against a real Redis."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.asyncio import Redis
from typer.testing import CliRunner

from bot.cli import app
from bot.compliance.ledger import AddressHasher, ConsentEvent, RedisConsentLedger
from bot.messages import Channel
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER

ANA = "+14155550123"
BEN = "+14155550124"


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    redis.Redis.from_url(redis_url).flushdb()
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url,
            "ENVIRONMENT": "test", "ALLOW_TEST_ENVIRONMENT": "true", "TWILIO_PHONE_NUMBER": BOT_NUMBER,
            "LOG_JSON": "false"}


def seed(redis_url: str, *events: tuple[str, str, str, str, datetime, str]) -> None:
    async def go() -> None:
        client = Redis.from_url(redis_url, decode_responses=True)
        ledger = RedisConsentLedger.on(client)
        for user, action, source, sid, at, words in events:
            await ledger.append(ConsentEvent.create(
                action=action, channel=Channel.SMS, bot=BOT_NUMBER, user=user, source=source,  # type: ignore[arg-type]
                at=at, hasher=AddressHasher(), message_sid=sid, words=words,
            ))
        await client.aclose()

    asyncio.run(go())


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["consent", *args], env=env)
    return result.exit_code, result.output


def test_export_writes_csv_since_the_date(env: dict[str, str], redis_url: str, tmp_path: Path) -> None:
    seed(redis_url,
         (ANA, "opt_out", "natural_language", "SM1", datetime(2026, 2, 27, 9, tzinfo=UTC), "stop texting me"),
         (BEN, "opt_out", "twilio_keyword", "SM2", datetime(2026, 3, 1, 9, tzinfo=UTC), "STOP"),
         (BEN, "opt_in", "twilio_keyword", "SM3", datetime(2026, 3, 2, 9, tzinfo=UTC), "START"))
    code, out = run(env, "export", "--since", "2026-03-01")
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["action"], r["source"], r["message_sid"], r["words"]) for r in rows] == [
        ("opt_out", "twilio_keyword", "SM2", "STOP"), ("opt_in", "twilio_keyword", "SM3", "START")]
    assert rows[0]["time"] == "2026-03-01T09:00:00+00:00" and rows[0]["channel"] == "sms"
    assert rows[0]["address"] == "+141******24" and rows[0]["address_hash"] == AddressHasher().hash(BEN)
    assert BEN not in out and ANA not in out
    # To a file: the same rows, and a count on stderr.
    target = tmp_path / "consent.csv"
    code, out = run(env, "export", "--since", "2026-01-01", "--output", str(target))
    assert code == 0 and "wrote 3 entries" in out
    assert len(list(csv.DictReader(target.open()))) == 3


def test_export_refuses_a_bad_date_and_a_missing_redis(env: dict[str, str]) -> None:
    code, out = run(env, "export", "--since", "last tuesday")
    assert code == 2 and "--since" in out
    code, out = run({**env, "REDIS_URL": ""}, "export", "--since", "2026-03-01")
    assert code == 2 and "REDIS_URL" in out


def test_show_prints_one_numbers_history_and_status(env: dict[str, str], redis_url: str) -> None:
    seed(redis_url,
         (ANA, "opt_out", "natural_language", "SM1", datetime(2026, 3, 1, 9, tzinfo=UTC), "no more texts"),
         (BEN, "opt_out", "twilio_keyword", "SM2", datetime(2026, 3, 1, 10, tzinfo=UTC), "STOP"))
    code, out = run(env, "show", "+1 415 555 0123")
    assert code == 0, out
    assert "1 consent entries" in out and "natural_language" in out and '"no more texts"' in out and "SM1" in out
    assert "SM2" not in out
    assert "sms to +15005550006: may be texted" in out  # the ledger is history; the flag is what holds now
    code, out = run(env, "show", "not-a-number")
    assert code == 2 and "not a phone number" in out


def test_staff_opt_out_and_opt_in_set_the_flag_and_are_recorded(env: dict[str, str]) -> None:
    code, out = run(env, "opt-out", ANA, "--channel", "sms", "--note", "asked at the front desk")
    assert code == 0 and "opted out on sms" in out, out
    code, out = run(env, "opt-out", ANA, "--channel", "sms")
    assert code == 0 and "already opted out" in out
    code, out = run(env, "show", ANA)
    assert "OPTED OUT" in out and "staff" in out and "asked at the front desk" in out
    code, out = run(env, "opt-in", ANA, "--channel", "sms", "--note", "signed form")
    assert code == 0 and "opted in on sms" in out
    code, out = run(env, "show", ANA)
    assert "2 consent entries" in out and "sms to +15005550006: may be texted" in out
    code, out = run(env, "opt-out", ANA, "--channel", "fax")
    assert code == 2 and "--channel" in out


def test_clear_unreachable(env: dict[str, str], redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.set("unreachable:{sms:" + ANA + "}", json.dumps({"code": 30006, "at": 1}))
    code, out = run(env, "show", ANA)
    assert "marked UNREACHABLE" in out
    code, out = run(env, "clear-unreachable", ANA)
    assert code == 0 and "cleared the unreachable mark" in out and "sms" in out
    assert client.get("unreachable:{sms:" + ANA + "}") is None
    code, out = run(env, "clear-unreachable", ANA)
    assert code == 0 and "nothing to clear" in out


def test_help_text_names_the_business() -> None:
    result = CliRunner().invoke(app, ["consent", "help-text"])
    assert result.exit_code == 0, result.output
    assert "Bright Smile Dental" in result.output and "STOP" in result.output

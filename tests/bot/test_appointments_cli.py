"""``bot appointments list|mark|stats`` against a real Redis: what staff see and change."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import redis
from typer.testing import CliRunner

from bot.appointments import Appointment, AppointmentBook
from bot.cli import app
from bot.confirmations.status import Source, Status
from bot.messages import Channel
from bot.storage import ConversationKey
from bot.storage.stores import Stores
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, BOT_NUMBER

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 2, 9, tzinfo=NY)
TEN = datetime(2026, 3, 3, 10, tzinfo=NY)


@pytest.fixture
def env(redis_url: str) -> dict[str, str]:
    redis.Redis.from_url(redis_url).flushdb()
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "REDIS_URL": redis_url,
            "ENVIRONMENT": "test", "ALLOW_TEST_ENVIRONMENT": "true", "LOG_JSON": "false"}


def seed(redis_url: str) -> list[Appointment]:
    async def go() -> list[Appointment]:
        stores = Stores.from_url(redis_url)
        book = AppointmentBook(stores.appointments, NY)
        ana = ConversationKey(Channel.SMS, BOT_NUMBER, "+14155550123")
        ben = ConversationKey(Channel.WHATSAPP, BOT_NUMBER, "+14155550124")
        a = await book.add(ana, service="cleaning", start=TEN, duration_minutes=60, name="Ana", now=NOW)
        b = await book.add(ben, service="checkup", start=TEN + timedelta(hours=3), duration_minutes=30, now=NOW)
        b = await book.set_status(b, Status.CONFIRMED, now=NOW + timedelta(hours=22), source=Source.BUTTON)
        await stores.close()
        return [a, b]

    return asyncio.run(go())


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["appointments", *args], env=env)
    return result.exit_code, result.output


def test_list_shows_a_days_appointments_with_status_and_who_changed_it(env: dict[str, str], redis_url: str) -> None:
    a, b = seed(redis_url)
    code, out = run(env, "list", "--day", "2026-03-03")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith(f"{a.id}  10:00  cleaning  booked (reply 2026-03-02 09:00)  Ana  +141******23")
    assert lines[1].startswith(f"{b.id}  13:00  checkup  confirmed (button 2026-03-03 07:00)")
    assert "14155550123" not in out  # numbers masked
    assert lines[-1] == "2 appointments on 2026-03-03"
    code, out = run(env, "list", "--day", "2026-03-03", "--status", "confirmed")
    assert code == 0 and a.id not in out and b.id in out and out.strip().endswith("(confirmed)")
    code, out = run(env, "list", "--day", "2026-03-04")
    assert code == 0 and out.strip() == "0 appointments on 2026-03-04"


def test_staff_mark_outcomes_and_the_stats_count_them(env: dict[str, str], redis_url: str) -> None:
    a, b = seed(redis_url)
    code, out = run(env, "mark", a.id, "no-show")
    assert code == 0, out
    assert "no-show (staff" in out
    code, out = run(env, "mark", b.id, "completed")
    assert code == 0 and "completed (staff" in out
    code, out = run(env, "list", "--day", "2026-03-03", "--status", "no-show")
    assert a.id in out and b.id not in out
    code, out = run(env, "stats", "--since", "2026-03-01", "--until", "2026-03-07")
    assert code == 0, out
    assert "appointments: 2" in out and "completed: 1" in out and "no-show: 1" in out
    assert "confirmation rate: 50% (1 of 2 not cancelled)" in out
    assert "no-show rate: 50% (1 of 2 visits)" in out


def test_bad_input_is_a_clear_error_and_changes_nothing(env: dict[str, str], redis_url: str) -> None:
    a, _ = seed(redis_url)
    code, out = run(env, "mark", a.id, "confirmed")
    assert code == 2 and "staff mark an appointment completed, no-show, cancelled, not confirmed" in out
    code, out = run(env, "mark", "nope", "completed")
    assert code == 2 and "no appointment 'nope'" in out
    code, out = run(env, "mark", a.id, "done")
    assert code == 2 and "unknown status 'done'" in out
    code, out = run(env, "mark", a.id, "cancelled")
    assert code == 0 and "cancelled (staff" in out
    code, out = run(env, "mark", a.id, "completed")
    assert code == 2 and "cancelled cannot become completed" in out
    code, out = run(env, "list", "--day", "March 3")
    assert code == 2 and "give a date like 2026-03-03" in out
    code, out = run(env, "stats", "--since", "2026-03-05", "--until", "2026-03-01")
    assert code == 2 and "is before" in out
    env.pop("REDIS_URL")
    code, out = run(env, "list", "--day", "2026-03-03")
    assert code == 2 and "REDIS_URL is not set" in out


def test_recall_consent_is_recorded_in_the_consent_ledger(env: dict[str, str], redis_url: str) -> None:
    from redis.asyncio import Redis

    from bot.compliance.ledger import AddressHasher, RedisConsentLedger
    from bot.confirmations.marketing import has_marketing_consent

    env["TWILIO_PHONE_NUMBER"] = BOT_NUMBER
    code, out = run(env, "recall-consent", "+14155550123", "--note", "front desk form")
    assert code == 0 and "marketing consent recorded for +141******23 (sms)" in out, out
    code, out = run(env, "recall-consent", "415 555", "--channel", "sms")
    assert code == 2 and "is not a phone number" in out
    code, out = run(env, "recall-consent", "+14155550123", "--channel", "fax")
    assert code == 2 and "--channel must be sms or whatsapp" in out

    async def check() -> tuple[bool, bool]:
        client = Redis.from_url(redis_url, decode_responses=True)
        ledger = RedisConsentLedger.on(client)
        sms = await has_marketing_consent(ledger, AddressHasher(), ConversationKey(Channel.SMS, BOT_NUMBER,
                                                                                   "+14155550123"))
        whatsapp = await has_marketing_consent(ledger, AddressHasher(),
                                               ConversationKey(Channel.WHATSAPP, BOT_NUMBER, "+14155550123"))
        await client.aclose()
        return sms, whatsapp

    assert asyncio.run(check()) == (True, False)  # consent is per channel

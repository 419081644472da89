"""The worker's email jobs: one email per event, retries only where SendGrid may recover, the daily digest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from arq import Retry
from fastapi import FastAPI

from bot.appointments import AppointmentBook
from bot.business import Business, load_business
from bot.clock import FrozenClock
from bot.mail.activity import ActivityLog
from bot.mail.compose import StaffMailComposer
from bot.mail.events import StaffEvent
from bot.mail.jobs import EMAIL_MAX_TRIES, digest_due, digest_job, email_job
from bot.mail.queue import InlineEmailQueue
from bot.mail.sendgrid_api import SendGridSender
from bot.mail.staff import StaffMail
from bot.messages import Channel
from bot.observability import Metrics
from bot.settings import Settings
from bot.storage import ConversationKey
from bot.storage.stores import Stores
from devtools.simulator.sendgrid import LocalSendGrid, create_sendgrid_router
from tests.support.servers import run_app

KEY = ConversationKey(Channel.SMS, "+15005550006", "+14155550123")
NY = ZoneInfo("America/New_York")
# 18:00 in New York (the demo clinic's zone), 2026-03-02.
SIX_PM = datetime(2026, 3, 2, 18, 0, 20, tzinfo=NY)


@pytest.fixture
def business() -> Business:
    return load_business(Path("intents") / "business.yaml")


@pytest.fixture
def sendgrid() -> Iterator[tuple[LocalSendGrid, str]]:
    local = LocalSendGrid(api_key="SG.k")
    app = FastAPI()
    app.include_router(create_sendgrid_router(local))
    with run_app(app) as url:
        yield local, url


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


@pytest.fixture
def mail(business: Business, sendgrid: tuple[LocalSendGrid, str], metrics: Metrics) -> StaffMail:
    stores = Stores.memory()
    return StaffMail(
        composer=StaffMailComposer(Path("prompts")),
        sender=SendGridSender("SG.k", from_email="bot@clinic.test", host=sendgrid[1]),
        records=stores.ledger, appointments=AppointmentBook(stores.appointments, business.tz),
        activity=ActivityLog(stores.ledger, tz=business.tz), business=business, to=("staff@clinic.test",),
        counter=metrics.emails,
    )


def emails_counted(metrics: Metrics, result: str) -> float:
    return metrics.emails.labels(result)._value.get()  # type: ignore[no-any-return]


def handoff(sid: str = "SM" + "1" * 32, reason: str = "urgent") -> StaffEvent:
    return StaffEvent.handoff(KEY, reason=reason, message_sid=sid, at=SIX_PM)


async def test_one_email_per_event(mail: StaffMail, sendgrid: tuple[LocalSendGrid, str], metrics: Metrics) -> None:
    ctx = {"staff_mail": mail, "clock": FrozenClock(SIX_PM), "job_try": 1}
    assert await email_job(ctx, handoff().to_dict()) == "sent"
    assert await email_job(ctx, handoff().to_dict()) == "duplicate"
    [email] = sendgrid[0].emails
    assert email.subject.startswith("URGENT: ")
    assert "possible dental emergency" in email.text
    assert (emails_counted(metrics, "sent"), emails_counted(metrics, "duplicate")) == (1, 1)


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_429_and_5xx_are_retried_then_given_up(
    mail: StaffMail, sendgrid: tuple[LocalSendGrid, str], metrics: Metrics, status: int
) -> None:
    sendgrid[0].fail_next.extend([status] * (EMAIL_MAX_TRIES + 1))
    with pytest.raises(Retry):
        await email_job({"staff_mail": mail, "clock": FrozenClock(SIX_PM), "job_try": 1}, handoff().to_dict())
    last = {"staff_mail": mail, "clock": FrozenClock(SIX_PM), "job_try": EMAIL_MAX_TRIES}
    assert await email_job(last, handoff().to_dict()) == f"failed:{status}"
    assert emails_counted(metrics, "failed") == 1
    assert sendgrid[0].emails == []


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_4xx_is_never_retried(
    mail: StaffMail, sendgrid: tuple[LocalSendGrid, str], metrics: Metrics, status: int
) -> None:
    sendgrid[0].fail_next.append(status)
    ctx = {"staff_mail": mail, "clock": FrozenClock(SIX_PM), "job_try": 1}
    assert await email_job(ctx, handoff().to_dict()) == f"failed:{status}"
    assert emails_counted(metrics, "failed") == 1


async def test_a_retry_after_a_5xx_sends_the_email(mail: StaffMail, sendgrid: tuple[LocalSendGrid, str]) -> None:
    sendgrid[0].fail_next.append(502)
    with pytest.raises(Retry):
        await email_job({"staff_mail": mail, "clock": FrozenClock(SIX_PM), "job_try": 1}, handoff().to_dict())
    assert await email_job({"staff_mail": mail, "clock": FrozenClock(SIX_PM), "job_try": 2},
                           handoff().to_dict()) == "sent"
    assert len(sendgrid[0].emails) == 1


def test_the_digest_is_due_once_at_its_local_minute() -> None:
    assert digest_due(SIX_PM, "18:00", NY)
    assert not digest_due(SIX_PM - timedelta(minutes=1), "18:00", NY)
    assert not digest_due(SIX_PM + timedelta(minutes=1), "18:00", NY)


async def test_the_digest_lists_the_days_activity(
    mail: StaffMail, sendgrid: tuple[LocalSendGrid, str], make_settings: object
) -> None:
    morning = SIX_PM.replace(hour=9)
    await mail.activity.record("booked", at=morning, ident="a1", text="Cleaning, Tue Mar 3 10:00 AM, +141******23")
    await mail.activity.record("booked", at=morning, ident="a1", text="Cleaning, Tue Mar 3 10:00 AM, +141******23")
    await mail.activity.record("cancelled", at=morning, ident="a2", text="Checkup, Wed Mar 4 9:00 AM, +141******99")
    await mail.activity.record("handoff", at=morning, ident="SM9", text="+141******23 (sms): complaint")
    await mail.activity.record("booked", at=morning - timedelta(days=1), ident="a0", text="yesterday's booking")

    async def deliver(event: StaffEvent) -> str:
        return await mail.deliver(event, now=SIX_PM)

    queue = InlineEmailQueue(deliver, retry_delays=())
    settings = Settings(twilio_account_sid="AC" + "0" * 32, twilio_auth_token="t", digest_time="18:00",
                        environment="development")
    ctx = {"staff_mail": mail, "email_queue": queue, "clock": FrozenClock(SIX_PM), "settings": settings}
    assert await digest_job({**ctx, "clock": FrozenClock(SIX_PM - timedelta(minutes=5))}) == "not yet"
    assert await digest_job(ctx) == "queued 2026-03-02"
    await queue.drain()
    await digest_job(ctx)  # a second worker in the same minute: the same event, no second email
    await queue.drain()
    [email] = sendgrid[0].emails
    assert "2026-03-02" in email.subject
    assert "Bookings (1)" in email.text and "Cancellations (1)" in email.text
    assert "Hand-offs to staff (1)" in email.text and "Opt-outs (0)" in email.text
    assert "yesterday's booking" not in email.text
    # The figures: the day's appointments by status and the rates (none booked for that day here).
    assert "Appointments on 2026-03-02" in email.text and "The last 7 days" in email.text
    assert "confirmation rate: n/a (0 of 0 not cancelled)" in email.text


async def test_the_digest_has_the_days_confirmation_and_no_show_rates(
    mail: StaffMail, sendgrid: tuple[LocalSendGrid, str]
) -> None:
    from bot.confirmations.status import Source, Status

    book = mail.appointments
    assert isinstance(book, AppointmentBook)
    nine = SIX_PM.replace(hour=9)
    made = [await book.add(ConversationKey(Channel.SMS, KEY.bot, f"+1415555020{n}"), service="checkup",
                           start=nine + timedelta(hours=n), duration_minutes=30, now=nine - timedelta(days=3))
            for n in range(4)]
    for appt, outcome in zip(made, (Status.COMPLETED, Status.COMPLETED, Status.NO_SHOW), strict=False):
        confirmed = await book.set_status(appt, Status.CONFIRMED, now=nine - timedelta(days=1), source=Source.REPLY)
        await book.set_status(confirmed, outcome, now=SIX_PM, source=Source.STAFF)
    await mail.deliver(StaffEvent.digest("2026-03-02", at=SIX_PM), now=SIX_PM)
    [email] = sendgrid[0].emails
    assert "confirmation rate: 75% (3 of 4 not cancelled)" in email.text
    assert "no-show rate: 33% (1 of 3 visits)" in email.text
    assert "<li>no-show rate: 33% (1 of 3 visits)</li>" in email.html

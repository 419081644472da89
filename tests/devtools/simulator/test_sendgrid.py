"""The local SendGrid answers as SendGrid does, through the official library and raw HTTP.

Answers are checked against SendGrid's v3 spec (``tests/data/sendgrid/``, a
copy of the mail/send operation): 202 with an empty body, 400 and 401 with
the spec's error schema.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI

from bot.mail.message import EmailMessage, EmailSendError
from bot.mail.sendgrid_api import SendGridSender
from devtools.simulator.sendgrid import LocalSendGrid, body_problems, create_sendgrid_router
from tests.support.servers import run_app

KEY = "SG.test-key"
SPEC = json.loads((Path(__file__).resolve().parents[2] / "data" / "sendgrid" / "mail_send_operation.json").read_text())
ERROR_SCHEMA = {**SPEC["definitions"]["global_error_response_schema"], "definitions": SPEC["definitions"]}
GOOD = {
    "personalizations": [{"to": [{"email": "staff@clinic.test"}]}],
    "from": {"email": "bot@clinic.test", "name": "Clinic bot"},
    "subject": "Patient asked for a person",
    "content": [{"type": "text/plain", "value": "Hello"}, {"type": "text/html", "value": "<p>Hello</p>"}],
}


@pytest.fixture
def sendgrid() -> LocalSendGrid:
    return LocalSendGrid(api_key=KEY)


@pytest.fixture
def base_url(sendgrid: LocalSendGrid) -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_sendgrid_router(sendgrid))
    with run_app(app) as url:
        yield url


def message(**overrides: Any) -> EmailMessage:
    values: dict[str, Any] = {"event_id": "handoff:SM1", "to": ("staff@clinic.test",), "subject": "Hi",
                              "text": "Plain", "html": "<p>Html</p>"}
    return EmailMessage(**{**values, **overrides})


async def test_the_official_library_sends_and_the_inbox_keeps_it(sendgrid: LocalSendGrid, base_url: str) -> None:
    sender = SendGridSender(KEY, from_email="bot@clinic.test", from_name="Clinic bot", host=base_url)
    await sender.send(message(to=("a@clinic.test", "b@clinic.test")))
    [email] = sendgrid.emails
    assert email.to == ("a@clinic.test", "b@clinic.test")
    assert (email.subject, email.text, email.html) == ("Hi", "Plain", "<p>Html</p>")
    assert email.from_email == "bot@clinic.test"


def test_accepted_is_202_with_an_empty_body(base_url: str) -> None:
    response = httpx.post(base_url + "/v3/mail/send", json=GOOD, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 202
    assert response.content == b""
    assert "202" in SPEC["operation"]["responses"]


@pytest.mark.parametrize("auth", ["", "Bearer SG.other", f"Basic {KEY}", f"Bearer {KEY}x"])
def test_no_or_wrong_key_is_401_with_sendgrids_error_body(base_url: str, auth: str) -> None:
    headers = {"Authorization": auth} if auth else {}
    response = httpx.post(base_url + "/v3/mail/send", json=GOOD, headers=headers)
    assert response.status_code == 401
    jsonschema.validate(response.json(), ERROR_SCHEMA)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**GOOD, "from": {"name": "no address"}}, "from"),
        ({k: v for k, v in GOOD.items() if k != "content"}, None),
        ({**GOOD, "personalizations": []}, "personalizations"),
        ({**GOOD, "personalizations": [{"to": []}]}, "personalizations.0.to"),
        ({**GOOD, "content": [{"type": "text/plain", "value": ""}]}, "content.0.value"),
        ({**GOOD, "subject": 5}, "subject"),
    ],
)
def test_a_body_that_breaks_the_spec_is_400_naming_the_field(
    base_url: str, sendgrid: LocalSendGrid, body: dict[str, Any], field: str | None
) -> None:
    response = httpx.post(base_url + "/v3/mail/send", json=body, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 400
    payload = response.json()
    jsonschema.validate(payload, ERROR_SCHEMA)
    if field is not None:
        assert field in [e["field"] for e in payload["errors"]]
    assert sendgrid.emails == []


def test_not_json_is_400(base_url: str) -> None:
    response = httpx.post(base_url + "/v3/mail/send", content=b"{nope",
                          headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert response.status_code == 400
    jsonschema.validate(response.json(), ERROR_SCHEMA)


def test_the_good_body_passes_the_spec_schema() -> None:
    assert body_problems(GOOD) == []


@pytest.mark.parametrize(("status", "retryable"), [(429, True), (500, True), (503, True), (400, False),
                                                    (401, False), (403, False)])
async def test_the_sender_says_which_failures_may_be_retried(
    sendgrid: LocalSendGrid, base_url: str, status: int, retryable: bool
) -> None:
    sendgrid.fail_next.append(status)
    sender = SendGridSender(KEY, from_email="bot@clinic.test", host=base_url)
    with pytest.raises(EmailSendError) as caught:
        await sender.send(message())
    assert (caught.value.status, caught.value.retryable) == (status, retryable)
    await sender.send(message())  # the next one goes through
    assert len(sendgrid.emails) == 1


async def test_a_wrong_key_is_final(base_url: str) -> None:
    sender = SendGridSender("SG.wrong", from_email="bot@clinic.test", host=base_url)
    with pytest.raises(EmailSendError) as caught:
        await sender.send(message())
    assert (caught.value.status, caught.value.retryable) == (401, False)


async def test_an_unreachable_host_is_retryable() -> None:
    sender = SendGridSender(KEY, from_email="bot@clinic.test", host="http://127.0.0.1:9")
    with pytest.raises(EmailSendError) as caught:
        await sender.send(message())
    assert caught.value.retryable

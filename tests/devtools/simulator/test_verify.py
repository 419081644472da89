"""The local Twilio Verify answers as Verify does, through the official SDK.

Every answer is validated against the Verify v2 spec's schemas (a copy of the
two paths the bot uses: ``tests/data/twilio/twilio_verify_v2_subset.json``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openapi_schema_validator import OAS30Validator
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from bot.clock import FrozenClock
from devtools.simulator.verify import MAX_CHECKS, MAX_SENDS, LocalVerify, create_verify_router
from tests.support.servers import run_app

SID = "AC" + "b2" * 16
TOKEN = "verify-token"
SERVICE = "VA" + "c3" * 16
NUMBER = "+14155550199"
SPEC_PATH = Path(__file__).resolve().parents[2] / "data" / "twilio" / "twilio_verify_v2_subset.json"
SPEC = json.loads(SPEC_PATH.read_text())


def schema(name: str) -> dict[str, Any]:
    return {**SPEC["components"]["schemas"][name], "components": SPEC["components"]}


def check_against(name: str, resource: dict[str, Any]) -> None:
    OAS30Validator(schema(name)).validate(resource)
    assert set(resource) == set(SPEC["components"]["schemas"][name]["properties"])


@pytest.fixture
def verify() -> LocalVerify:
    return LocalVerify(account_sid=SID, auth_token=TOKEN, clock=FrozenClock())


@pytest.fixture
def base_url(verify: LocalVerify) -> Iterator[str]:
    app = FastAPI()
    app.include_router(create_verify_router(verify))
    with run_app(app) as url:
        yield url


@pytest.fixture
def service(base_url: str) -> Any:
    client = Client(SID, TOKEN)
    client.verify.base_url = base_url
    return client.verify.v2.services(SERVICE)


def test_start_sends_a_code_and_answers_201_pending(verify: LocalVerify, base_url: str) -> None:
    response = httpx.post(f"{base_url}/v2/Services/{SERVICE}/Verifications", data={"To": NUMBER, "Channel": "sms"},
                          auth=(SID, TOKEN))
    assert response.status_code == 201
    body = response.json()
    check_against("verify.v2.service.verification", body)
    assert (body["status"], body["to"], body["channel"], body["valid"]) == ("pending", NUMBER, "sms", False)
    assert body["sid"].startswith("VE") and len(body["sid"]) == 34
    [sent] = verify.sent
    assert sent.to == NUMBER and len(sent.code) == 6 and sent.code.isdigit()


def test_right_code_approves_wrong_code_stays_pending(verify: LocalVerify, service: Any, base_url: str) -> None:
    service.verifications.create(to=NUMBER, channel="whatsapp")
    code = verify.sent[-1].code
    wrong = "000000" if code != "000000" else "111111"
    assert service.verification_checks.create(to=NUMBER, code=wrong).status == "pending"
    raw = httpx.post(f"{base_url}/v2/Services/{SERVICE}/VerificationCheck", data={"To": NUMBER, "Code": code},
                     auth=(SID, TOKEN))
    assert raw.status_code == 200
    check_against("verify.v2.service.verification_check", raw.json())
    assert (raw.json()["status"], raw.json()["valid"]) == ("approved", True)


def test_an_approved_verification_cannot_be_checked_again(verify: LocalVerify, service: Any) -> None:
    service.verifications.create(to=NUMBER, channel="sms")
    code = verify.sent[-1].code
    assert service.verification_checks.create(to=NUMBER, code=code).status == "approved"
    with pytest.raises(TwilioRestException) as caught:
        service.verification_checks.create(to=NUMBER, code=code)
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_a_code_expires_after_ten_minutes(verify: LocalVerify, service: Any) -> None:
    service.verifications.create(to=NUMBER, channel="sms")
    code = verify.sent[-1].code
    assert isinstance(verify.clock, FrozenClock)
    verify.clock.advance(timedelta(minutes=10))
    with pytest.raises(TwilioRestException) as caught:
        service.verification_checks.create(to=NUMBER, code=code)
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_too_many_wrong_codes_is_60202(verify: LocalVerify, service: Any) -> None:
    service.verifications.create(to=NUMBER, channel="sms")
    code = verify.sent[-1].code
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(MAX_CHECKS):
        assert service.verification_checks.create(to=NUMBER, code=wrong).status == "pending"
    with pytest.raises(TwilioRestException) as caught:
        service.verification_checks.create(to=NUMBER, code=code)
    assert (caught.value.status, caught.value.code) == (429, 60202)


def test_too_many_sends_is_60203_and_a_resend_keeps_the_code(verify: LocalVerify, service: Any) -> None:
    for _ in range(MAX_SENDS):
        service.verifications.create(to=NUMBER, channel="sms")
    assert len({s.code for s in verify.sent}) == 1
    with pytest.raises(TwilioRestException) as caught:
        service.verifications.create(to=NUMBER, channel="sms")
    assert (caught.value.status, caught.value.code) == (429, 60203)


@pytest.mark.parametrize(("to", "channel"), [("4155550199", "sms"), (NUMBER, "pigeon"), ("", "sms")])
def test_bad_parameters_are_400(service: Any, to: str, channel: str) -> None:
    with pytest.raises(TwilioRestException) as caught:
        service.verifications.create(to=to, channel=channel)
    assert caught.value.status == 400


def test_wrong_credentials_are_401(base_url: str) -> None:
    response = httpx.post(f"{base_url}/v2/Services/{SERVICE}/Verifications", data={"To": NUMBER, "Channel": "sms"},
                          auth=(SID, "wrong"))
    assert response.status_code == 401
    assert response.json()["code"] == 20003


def test_a_check_without_a_verification_is_404(service: Any) -> None:
    with pytest.raises(TwilioRestException) as caught:
        service.verification_checks.create(to=NUMBER, code="123456")
    assert (caught.value.status, caught.value.code) == (404, 20404)

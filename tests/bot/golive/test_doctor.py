"""`bot doctor`: one line per check, each problem with its fix; exit 1 when something failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from redis import Redis
from typer.testing import CliRunner

from bot.cli import app
from bot.golive.doctor import DoctorInputs, Level, exit_status, run_doctor
from bot.outbound.templates import ContentTemplates
from bot.settings import Settings, load_settings
from devtools.simulator.content import register_content_templates
from tests.bot.golive.conftest import Account

ROOT = Path(__file__).parents[3]


class UnreachableModel(FakeListChatModel):
    """A model whose provider cannot be reached."""

    def _call(self, *args: Any, **kwargs: Any) -> str:
        raise ConnectionError("connection refused")


@pytest.fixture
def templated(account: Account) -> Account:
    register_content_templates(account.sim, ContentTemplates.load(ROOT / "intents" / "templates.yaml"))
    return account


@pytest.fixture
def redis_policy(redis_url: str) -> Iterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    before = client.config_get("maxmemory-policy")["maxmemory-policy"]
    yield client
    client.config_set("maxmemory-policy", before)
    client.close()


def settings_for(account: Account, **extra: str) -> Settings:
    return load_settings(**{k: v for k, v in account.env(**extra).items() if v})


def by_check(findings: list[Any]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for finding in findings:
        out.setdefault(finding.check, []).append(finding)
    return out


def test_a_healthy_setup_passes_every_check(templated: Account, redis_url: str) -> None:
    settings = settings_for(templated, REDIS_URL=redis_url, LLM_MODEL="fake:model",
                            TWILIO_PHONE_NUMBER="+15005550006")
    inputs = DoctorInputs(settings=settings, model_factory=lambda s: FakeListChatModel(responses=["ok"]))
    findings = run_doctor(inputs)
    assert exit_status(findings) == 0, [f.line() for f in findings]
    checks = by_check(findings)
    assert {"settings", "redis version", "redis latency", "redis maxmemory-policy", "signature URL", "model",
            "template appointment_reminder", "template welcome_back"} <= set(checks)
    assert checks["redis maxmemory-policy"][0].line() == "ok    redis maxmemory-policy: noeviction"
    assert "https://bot.example.com/twilio/messages" in checks["signature URL"][0].detail
    assert all(f.level is Level.OK for f in findings)


def test_an_evicting_redis_fails_with_the_fix(templated: Account, redis_url: str, redis_policy: Redis) -> None:
    redis_policy.config_set("maxmemory-policy", "allkeys-lru")
    result = CliRunner().invoke(app, ["doctor"], env=templated.env(REDIS_URL=redis_url))
    assert result.exit_code == 1
    line = next(line for line in result.output.splitlines() if "maxmemory-policy" in line)
    assert line.startswith("FAIL  redis maxmemory-policy: allkeys-lru")
    assert "-> fix: set maxmemory-policy noeviction" in line


def test_an_unapproved_template_and_an_unreachable_model_fail(templated: Account, redis_url: str) -> None:
    reminder = ContentTemplates.load(ROOT / "intents" / "templates.yaml").get("appointment_reminder")
    templated.sim.account.set_approval(reminder.content_sid, "rejected")
    settings = settings_for(templated, REDIS_URL=redis_url, LLM_MODEL="fake:model")
    inputs = DoctorInputs(settings=settings, model_factory=lambda s: UnreachableModel(responses=["x"]))
    checks = by_check(run_doctor(inputs))
    template = checks["template appointment_reminder"][0]
    assert template.level is Level.FAIL
    assert "approval is rejected" in template.line() and "-> fix: submit it for WhatsApp approval" in template.line()
    assert checks["template welcome_back"][0].level is Level.OK
    model = checks["model"][0]
    assert model.level is Level.FAIL and "connection refused" in model.line() and "-> fix:" in model.line()


def test_bad_settings_fail_first_and_the_rest_say_why_they_skipped(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["doctor"], env={"TWILIO_ACCOUNT_SID": "nope", "TWILIO_AUTH_TOKEN": "x"})
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0].startswith("FAIL  settings: TWILIO_ACCOUNT_SID: must be 'AC' followed by 32 hex characters")
    assert "-> fix:" in lines[0]
    assert all(line.startswith(("skip", "FAIL")) for line in lines)


def test_production_without_a_public_url_fails(templated: Account, redis_url: str) -> None:
    settings = settings_for(templated, ENVIRONMENT="production", PUBLIC_BASE_URL="", REDIS_URL=redis_url)
    checks = by_check(run_doctor(DoctorInputs(settings=settings)))
    signature = checks["signature URL"][0]
    assert signature.level is Level.FAIL and "set PUBLIC_BASE_URL" in signature.fix
    assert "every webhook gets 403" in signature.line()


def test_wrong_twilio_credentials_are_reported_on_the_templates_line(templated: Account) -> None:
    settings = settings_for(templated, TWILIO_AUTH_TOKEN="wrong-token")
    checks = by_check(run_doctor(DoctorInputs(settings=settings)))
    line = checks["content templates"][0].line()
    assert line.startswith("FAIL  content templates: Twilio refused the listing: HTTP 401")
    assert "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN" in line

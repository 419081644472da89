"""Settings: one clear message naming each bad setting."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.settings import load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "REDIS_URL", "PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]  # no stray .env


def test_missing_settings_are_all_named() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert "TWILIO_ACCOUNT_SID: missing" in message
    assert "TWILIO_AUTH_TOKEN: missing" in message


def test_invalid_values_are_named_with_a_reason() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(twilio_account_sid="XX123", twilio_auth_token="t",
                      public_base_url="not a url", redis_url="http://nope", lock_wait_seconds=-1)
    message = str(info.value)
    assert "TWILIO_ACCOUNT_SID: must be 'AC' followed by 32 hex characters" in message
    assert "PUBLIC_BASE_URL" in message and "REDIS_URL" in message and "LOCK_WAIT_SECONDS" in message


def test_environment_and_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    from pathlib import Path

    Path(".env").write_text("TWILIO_ACCOUNT_SID=AC" + "b" * 32 + "\nTWILIO_AUTH_TOKEN=from-dotenv\n")
    monkeypatch.setenv("REDIS_URL", "redis://localhost:6379/3")
    settings = load_settings()
    assert settings.twilio_auth_token.get_secret_value() == "from-dotenv"
    assert settings.redis_url == "redis://localhost:6379/3"
    assert "from-dotenv" not in repr(settings)  # secrets never print


def test_public_base_url_normalised() -> None:
    s = load_settings(twilio_account_sid="AC" + "c" * 32, twilio_auth_token="t",
                      public_base_url="https://bot.example.com/")
    assert s.public_base_url == "https://bot.example.com"

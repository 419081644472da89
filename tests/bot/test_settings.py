"""Settings: one clear message naming each bad setting."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import Settings, load_settings


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
                      public_base_url="https://bot.example.com/", redis_url="redis://localhost:6379/0")
    assert s.public_base_url == "https://bot.example.com"


# -- unsafe combinations refuse to start ---------------------------------------------------

CREDENTIALS = {"twilio_account_sid": "AC" + "c" * 32, "twilio_auth_token": "t"}


def test_production_without_redis_refuses_to_start_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**CREDENTIALS, environment="production")
    assert "REDIS_URL: required when ENVIRONMENT=production" in str(info.value)
    # The default environment is production: the same without saying so.
    with pytest.raises(ConfigError, match="REDIS_URL"):
        load_settings(**CREDENTIALS)
    assert load_settings(**CREDENTIALS, redis_url="redis://localhost:6379/0").environment == "production"
    assert load_settings(**CREDENTIALS, environment="development").redis_url is None


def test_test_environment_needs_an_explicit_opt_in() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(**CREDENTIALS, environment="test")
    assert "ENVIRONMENT" in str(info.value) and "ALLOW_TEST_ENVIRONMENT" in str(info.value)
    assert load_settings(**CREDENTIALS, environment="test", allow_test_environment=True).environment == "test"


def test_unsigned_webhooks_only_in_development() -> None:
    for environment in ("production", "test"):
        with pytest.raises(ConfigError, match="TWILIO_SKIP_SIGNATURE_CHECK"):
            load_settings(**CREDENTIALS, environment=environment, allow_test_environment=True,
                          redis_url="redis://localhost:6379/0", twilio_skip_signature_check=True)
    assert load_settings(**CREDENTIALS, environment="development",
                         twilio_skip_signature_check=True).twilio_skip_signature_check


def test_redis_timeout_must_sit_inside_the_reply_budget() -> None:
    with pytest.raises(ConfigError, match="REDIS_TIMEOUT_SECONDS"):
        load_settings(**CREDENTIALS, environment="development", redis_timeout_seconds=3, reply_budget_seconds=3)
    assert load_settings(**CREDENTIALS, environment="development").redis_timeout_seconds == 1.0


# -- .env.example documents every setting ------------------------------------------------

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"
_LINE = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def _example_lines() -> dict[str, tuple[bool, str, str]]:
    """NAME -> (commented out, value, the comment line above it)."""
    entries: dict[str, tuple[bool, str, str]] = {}
    previous = ""
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line.strip())
        if match:
            name = match["name"]
            assert name not in entries, f".env.example lists {name} twice"
            entries[name] = (bool(match["commented"]), match["value"], previous)
        previous = line.strip()
    return entries


def test_env_example_lists_every_setting_with_a_comment() -> None:
    entries = _example_lines()
    names = {name.upper() for name in Settings.model_fields}
    assert sorted(names - set(entries)) == [], "settings missing from .env.example"
    assert sorted(set(entries) - names) == [], ".env.example lists names bot/settings.py does not know"
    for name, (_, _, comment) in entries.items():
        assert comment.startswith("# ") and not _LINE.match(comment.lstrip("# ")), f"{name} has no comment line"


def test_env_example_values_are_the_defaults_and_secrets_are_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    entries = _example_lines()
    secrets = {name.upper() for name, f in Settings.model_fields.items() if "SecretStr" in str(f.annotation)}
    assert secrets >= {"TWILIO_AUTH_TOKEN", "LLM_API_KEY"}
    for name in secrets:
        assert entries[name][1] == "", f"{name} is a secret: leave it empty in .env.example"
    # Copied to .env as it is (credentials filled in), it changes nothing.
    # (Production also needs REDIS_URL, which has no default to copy.)
    given = {"twilio_account_sid": "AC" + "d" * 32, "twilio_auth_token": "t", "redis_url": "redis://localhost:6379/0"}
    copied = Settings(_env_file=ENV_EXAMPLE, **given)  # type: ignore[call-arg]
    for field, info in Settings.model_fields.items():
        if info.is_required() or field in given:
            continue
        assert getattr(copied, field) == info.get_default(call_default_factory=True), field
        commented = entries[field.upper()][0]
        assert commented == (info.default is None), f"{field.upper()}: unset settings are commented out"


def test_redis_url_names_a_cluster_or_a_sentinel_and_the_queue_its_own_redis(
    make_settings: Callable[..., Settings],
) -> None:
    cluster = "redis+cluster://10.0.0.1:7000,10.0.0.2:7000"
    with pytest.raises(ConfigError) as err:
        make_settings(redis_url=cluster)
    assert "QUEUE_REDIS_URL: required when REDIS_URL is a Redis Cluster" in str(err.value)
    settings = make_settings(redis_url=cluster, queue_redis_url="redis+sentinel://10.0.0.5:26379/mymaster")
    assert settings.queue_url == "redis+sentinel://10.0.0.5:26379/mymaster"
    with pytest.raises(ConfigError) as err:
        make_settings(redis_url=cluster, queue_redis_url=cluster)
    assert "QUEUE_REDIS_URL" in str(err.value) and "does not run on a Redis Cluster" in str(err.value)
    sentinel = make_settings(redis_url="redis+sentinel://10.0.0.5:26379,10.0.0.6:26379/mymaster/2")
    assert sentinel.queue_url == sentinel.redis_url  # the queue shares a Sentinel-managed Redis
    assert make_settings(redis_url="redis://localhost:6379/0").queue_url == "redis://localhost:6379/0"
    assert make_settings().queue_url is None


def test_urls_become_the_right_redis_py_clients() -> None:
    from redis.asyncio import Redis
    from redis.asyncio.cluster import RedisCluster

    from bot.storage.connect import client_for, hosts, queue_pool, sentinel_service

    assert isinstance(client_for("redis+cluster://127.0.0.1:7000,127.0.0.1:7001"), RedisCluster)
    master = client_for("redis+sentinel://:secret@127.0.0.1:26379,127.0.0.1:26380/mymaster/2")
    assert isinstance(master, Redis)
    assert master.connection_pool.service_name == "mymaster"  # type: ignore[attr-defined]
    assert master.connection_pool.connection_kwargs["db"] == 2
    assert master.connection_pool.connection_kwargs["password"] == "secret"
    assert hosts("127.0.0.1:26379,127.0.0.1:26380", 26379) == [("127.0.0.1", 26379), ("127.0.0.1", 26380)]
    assert sentinel_service("redis+sentinel://h:26379/mymaster") == "mymaster"
    with pytest.raises(ConfigError, match="names the master"):
        sentinel_service("redis+sentinel://h:26379")
    with pytest.raises(ConfigError, match="cannot run on a Redis Cluster"):
        queue_pool("redis+cluster://127.0.0.1:7000")
    with pytest.raises(ConfigError, match="unknown scheme"):
        client_for("http://127.0.0.1:6379")

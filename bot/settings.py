"""Typed settings, read from the environment and ``.env``.

One class, validated once at start-up; every component receives the instance
it needs (no module-level globals). :func:`load_settings` turns pydantic's
validation error into one :class:`~bot.errors.ConfigError` naming each bad
setting, which the CLI prints before exiting.

Example::

    settings = load_settings(TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="secret")
    settings.redis_url  # None -> in-memory store (development only)
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError

_ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


class Settings(BaseSettings):
    """Everything configurable. Environment names are the upper-case field names."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    # Twilio credentials: required; the auth token signs every webhook.
    twilio_account_sid: str
    twilio_auth_token: SecretStr
    # Where Twilio's REST API lives; the dev simulator points this at itself.
    twilio_api_base_url: str | None = None
    twilio_messaging_service_sid: str | None = None

    # The URL Twilio calls (scheme://host[:port]); signatures are checked
    # against it, so proxies and tunnels don't break validation.
    public_base_url: str | None = None

    environment: Literal["production", "development", "test"] = "production"
    # ENVIRONMENT=test is refused unless this is also set: a deployment that
    # says "test" by mistake must not run with test-only leniency unnoticed.
    allow_test_environment: bool = False
    # Development only: accept unsigned webhooks. Refused otherwise.
    twilio_skip_signature_check: bool = False

    # Unset: in-memory store, for one process in development and tests only
    # (required in production: opt-outs must survive a restart).
    redis_url: str | None = None
    # The job queue's Redis (arq): a plain Redis or a Sentinel master
    # (docs/scaling.md). Unset: REDIS_URL. Required when REDIS_URL is a Redis
    # Cluster, since arq's queue does not run on one.
    queue_redis_url: str | None = None
    # Bound on each Redis call. Well inside REPLY_BUDGET_SECONDS, so a hung
    # Redis is noticed in time to answer Twilio with an error (fallback URL)
    # instead of an empty success.
    redis_timeout_seconds: float = Field(default=1.0, gt=0, le=10)

    # Unset: no model; the offline pipeline answers alone.
    llm_model: str | None = None
    llm_base_url: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=8.0, gt=0, le=60)
    llm_max_sms_segments: int = Field(default=2, ge=1, le=10)

    # Conversation state lifetime and history size.
    conversation_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    history_limit: int = Field(default=20, ge=0, le=200)
    # How long a MessageSid is recognised as handled (its conversation's last
    # 32 messages): a retry then never runs the turn twice.
    dedupe_ttl_seconds: int = Field(default=6 * 3600, ge=60)
    # How long the TwiML served for a MessageSid is kept, so a retry gets the
    # same answer byte for byte. Twilio retries within seconds (its 15 s
    # webhook timeout); a retry after this gets an empty <Response/>.
    dedupe_answer_ttl_seconds: int = Field(default=900, ge=1)
    # Conversation lock: lease of the holder, and how long a waiter waits.
    lock_lease_seconds: float = Field(default=30.0, gt=0)
    # Longer than the lease, so a waiter outlives a crashed holder; the HTTP
    # answer itself is bounded by REPLY_BUDGET_SECONDS, not by this.
    lock_wait_seconds: float = Field(default=60.0, gt=0)

    # Who answers STOP/START/HELP on SMS: Twilio itself (default) or the bot.
    sms_keyword_replies: Literal["twilio", "bot"] = "twilio"
    # Key of the consent ledger's address hashes (HMAC-SHA256); unset: plain SHA-256.
    consent_hash_key: SecretStr | None = None

    # Requests larger than this are refused with 413.
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # A turn slower than this is answered later through REST (Outbound).
    reply_budget_seconds: float = Field(default=3.0, gt=0, le=14)

    # Hand-off to a person: who is notified (default: the business phone in
    # intents/business.yaml) and how long the bot stays quiet after the last message.
    staff_number: str | None = None
    handoff_idle_minutes: int = Field(default=30, ge=1, le=7 * 24 * 60)
    # While staff have it, the first message after this long without one gets a short
    # acknowledgment ("Our team has your message"); the ones in between get none.
    handoff_quiet_minutes: int = Field(default=10, ge=1, le=24 * 60)

    # Outbound (docs/outbound.md). The number messages the bot starts come
    # from (broadcasts), unless a command names another.
    twilio_phone_number: str | None = None
    # Tries per REST send on 20429, 5xx and network errors (backoff with jitter).
    outbound_max_attempts: int = Field(default=4, ge=1, le=10)
    outbound_backoff_seconds: float = Field(default=0.5, ge=0, le=30)
    # A worker job (a send, a late turn) is cancelled after this; a crashed
    # worker's job runs again once it has passed (plus arq's grace).
    worker_job_timeout_seconds: float = Field(default=120.0, ge=1, le=3600)
    # `bot worker` serves its own metrics (sends, jobs, held messages) at
    # http://0.0.0.0:<port>/metrics for Prometheus; unset: not served.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Appointment reminders go out this long before the start.
    reminder_lead_hours: float = Field(default=24.0, gt=0, le=24 * 14)
    # Broadcast pace per sending number (US long code: 1 segment/s).
    broadcast_rate_per_second: float = Field(default=1.0, gt=0, le=1000)

    # Voice calls (docs/voice.md). The <Say> voice and language, and the
    # speech-recognition language of <Gather>.
    voice_name: str = "Polly.Joanna-Neural"
    voice_language: str = "en-US"
    # Speech heard with a lower Twilio Confidence (0..1) is confirmed or re-asked.
    voice_min_confidence: float = Field(default=0.5, ge=0, le=1)
    # Seconds of silence before <Gather> gives up; seconds a <Dial> to staff rings.
    voice_gather_timeout_seconds: int = Field(default=5, ge=1, le=60)
    voice_dial_timeout_seconds: int = Field(default=20, ge=5, le=600)
    # A slow turn: "One moment" and a <Redirect> at most this many times (each
    # waiting up to REPLY_BUDGET_SECONDS) before the caller hears an apology.
    voice_max_redirects: int = Field(default=3, ge=1, le=10)
    # Staff email through SendGrid (docs/staff-email.md): all three set = on.
    staff_email: str | None = None
    sendgrid_api_key: SecretStr | None = None
    email_from: str | None = None
    # SendGrid's API host; the dev simulator points this at itself.
    sendgrid_api_base_url: str | None = None
    # The daily digest goes out at this local time (the business's zone); empty: no digest.
    digest_time: str | None = "18:00"

    # Twilio Verify for reminder contacts (docs/staff-email.md): unset = the flow is off.
    twilio_verify_service_sid: str | None = None
    # Wrong codes accepted before a verification stops.
    verify_max_code_tries: int = Field(default=3, ge=1, le=5)

    # Where the business data lives (intents/, prompts/).
    intents_dir: str = "intents"
    prompts_dir: str = "prompts"

    log_level: str = "INFO"
    log_json: bool = True

    @field_validator("twilio_account_sid")
    @classmethod
    def _account_sid(cls, value: str) -> str:
        value = value.strip()
        if not _ACCOUNT_SID.match(value):
            raise ValueError("must be 'AC' followed by 32 hex characters")
        return value

    @field_validator("twilio_auth_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("public_base_url", "twilio_api_base_url", "llm_base_url", "sendgrid_api_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("must be an http(s) URL like https://bot.example.com")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^(redis|rediss|unix|redis\+cluster|rediss\+cluster|redis\+sentinel|rediss\+sentinel)://",
                        value.strip()):
            raise ValueError("must start with redis://, rediss://, unix://, redis+cluster:// or redis+sentinel://")
        return value.strip()

    @field_validator("staff_email", "email_from")
    @classmethod
    def _emails(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        addresses = [a.strip() for a in value.split(",") if a.strip()]
        for address in addresses:
            if not re.match(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+$", address):
                raise ValueError(f"{address!r} is not an email address")
        return ", ".join(addresses)

    @field_validator("digest_time")
    @classmethod
    def _digest_time(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^([01]?\d|2[0-3]):[0-5]\d$", value.strip()):
            raise ValueError("must be a local time like 18:00")
        return value.strip()

    @field_validator("twilio_verify_service_sid")
    @classmethod
    def _verify_sid(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^VA[0-9a-fA-F]{32}$", value.strip()):
            raise ValueError("must be 'VA' followed by 32 hex characters")
        return value.strip()

    @property
    def staff_email_enabled(self) -> bool:
        """Staff email is on when STAFF_EMAIL, SENDGRID_API_KEY and EMAIL_FROM are all set."""
        return bool(self.staff_email and self.sendgrid_api_key and self.email_from)

    @field_validator("queue_redis_url")
    @classmethod
    def _queue_redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if not re.match(r"^(redis|rediss|unix|redis\+sentinel|rediss\+sentinel)://", value.strip()):
            raise ValueError("must start with redis://, rediss://, unix:// or redis+sentinel:// "
                             "(the job queue does not run on a Redis Cluster)")
        return value.strip()

    @property
    def queue_url(self) -> str | None:
        """Where the job queue lives: ``QUEUE_REDIS_URL``, else ``REDIS_URL`` (None: in-process jobs)."""
        return self.queue_redis_url or self.redis_url

    @field_validator("llm_model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    @field_validator("twilio_phone_number")
    @classmethod
    def _phone_number(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        # Bare E.164; the channel adds "whatsapp:" where needed.
        value = value.strip().removeprefix("whatsapp:")
        if not re.match(r"^\+[1-9][0-9]{6,14}$", value):
            raise ValueError("must be an E.164 number like +15005550006")
        return value

    @model_validator(mode="after")
    def _safe_for_environment(self) -> Settings:
        problems: list[str] = []
        if self.environment == "production" and not self.redis_url:
            problems.append(
                "REDIS_URL: required when ENVIRONMENT=production (the in-memory store forgets "
                "opt-outs and conversations at every restart)"
            )
        if self.redis_url and self.redis_url.split("://")[0].endswith("+cluster") and not self.queue_redis_url:
            problems.append(
                "QUEUE_REDIS_URL: required when REDIS_URL is a Redis Cluster (the job queue, arq, does not "
                "run on a cluster: give it a plain Redis or a Sentinel master, see docs/scaling.md)"
            )
        if self.environment == "test" and not self.allow_test_environment:
            problems.append(
                "ENVIRONMENT: 'test' is for the test suite only; set ALLOW_TEST_ENVIRONMENT=true "
                "to confirm, or use production or development"
            )
        if self.twilio_skip_signature_check and self.environment != "development":
            problems.append(
                "TWILIO_SKIP_SIGNATURE_CHECK: for development only; "
                "set ENVIRONMENT=development to use it"
            )
        if "redis_timeout_seconds" in self.model_fields_set and self.redis_timeout_seconds >= self.reply_budget_seconds:
            problems.append(
                "REDIS_TIMEOUT_SECONDS: must be below REPLY_BUDGET_SECONDS, so a hung Redis is "
                "detected while Twilio still waits for the answer"
            )
        if problems:
            raise ValueError("\n  ".join(problems))
        return self


def load_settings(**overrides: Any) -> Settings:
    """Build :class:`Settings` from the environment, ``.env`` and ``overrides``.

    Raises :class:`ConfigError` listing every bad or missing setting by its
    environment name, e.g. ``TWILIO_AUTH_TOKEN: missing``.
    """
    try:
        return Settings(**{k.lower(): v for k, v in overrides.items()})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            reason = "missing" if err["type"] == "missing" else err["msg"]
            reason = reason.removeprefix("Value error, ")
            # Rules over several settings name their settings themselves.
            problems.append(f"{name}: {reason}" if name else reason)
        raise ConfigError("invalid settings:\n  " + "\n  ".join(problems)) from None

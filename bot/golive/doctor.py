"""``bot doctor``: check a deployment's setup, one line per check, each problem with its fix.

The checks run in order; each returns :class:`Finding` lines. A check that
needs what an earlier one found broken says so and is skipped. The exit
status is 1 when any check failed (warnings alone: 0).

Example::

    findings = run_doctor(DoctorInputs.from_env())
    for finding in findings:
        print(finding.line())
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from bot.errors import BotError, ConfigError
from bot.golive.twilio_admin import twilio_reason
from bot.golive.urls import WebhookUrls
from bot.settings import Settings, load_settings

# Redis releases older than this lack commands the store and arq use.
MIN_REDIS_VERSION = (6, 2)
# A Redis further away than this makes every turn slow (two round trips per message).
SLOW_REDIS_MS = 20.0
PINGS = 5
MODEL_TIMEOUT_SECONDS = 15.0


class Level(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Finding:
    """One printed line: ``FAIL  redis: maxmemory-policy is allkeys-lru  -> fix: ...``."""

    level: Level
    check: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.level.value:<4}  {self.check}: {self.detail}"
        return f"{text}  -> fix: {self.fix}" if self.fix and self.level in (Level.FAIL, Level.WARN) else text


@dataclass
class DoctorInputs:
    """What the checks look at. Tests pass their own model factory (a LangChain fake model)."""

    settings: Settings | None
    settings_error: str | None = None
    model_factory: Callable[[Settings], Any] | None = None
    twilio_factory: Callable[[Settings], Any] | None = None
    results: dict[str, Level] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> DoctorInputs:
        try:
            settings = load_settings(**overrides)
        except ConfigError as exc:
            return cls(settings=None, settings_error=str(exc))
        return cls(settings=settings)


Check = Callable[[DoctorInputs], list[Finding]]


def check_settings(inputs: DoctorInputs) -> list[Finding]:
    s = inputs.settings
    if s is None:
        problems = (inputs.settings_error or "").removeprefix("invalid settings:").strip().replace("\n  ", "; ")
        return [Finding(Level.FAIL, "settings", problems,
                        "set these in the environment or .env (see .env.example and the README)")]
    findings = [Finding(Level.OK, "settings", f"valid (ENVIRONMENT={s.environment})")]
    production = s.environment == "production"
    if not s.redis_url:
        findings.append(Finding(
            Level.FAIL if production else Level.WARN, "settings",
            "REDIS_URL is unset: in-memory store, one process, state lost on restart",
            "set REDIS_URL=redis://host:6379/0"))
    if s.twilio_skip_signature_check:
        findings.append(Finding(Level.WARN, "settings", "TWILIO_SKIP_SIGNATURE_CHECK accepts unsigned webhooks",
                                "unset it outside development"))
    if not s.twilio_phone_number and not s.twilio_messaging_service_sid:
        findings.append(Finding(Level.WARN, "settings",
                                "no TWILIO_PHONE_NUMBER: reminders and broadcasts have no sender",
                                "set TWILIO_PHONE_NUMBER=+1... (the number texted)"))
    return findings


def check_redis(inputs: DoctorInputs) -> list[Finding]:
    s = inputs.settings
    if s is None or not s.redis_url:
        return [Finding(Level.SKIP, "redis", "no REDIS_URL")]
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(s.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        server: dict[str, Any] = client.info("server")  # type: ignore[assignment]
        memory: dict[str, Any] = client.info("memory")  # type: ignore[assignment]
        times = []
        for _ in range(PINGS):
            started = time.perf_counter()
            client.ping()
            times.append((time.perf_counter() - started) * 1000)
    except RedisError as exc:
        return [Finding(Level.FAIL, "redis", f"cannot reach {_safe_url(s.redis_url)}: {exc}",
                        "start Redis or correct REDIS_URL (redis://host:6379/0)")]
    finally:
        client.close()
    findings = []
    version = str(server.get("redis_version", "0"))
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if parts < MIN_REDIS_VERSION:
        findings.append(Finding(Level.FAIL, "redis version", f"{version} is too old",
                                f"use Redis {'.'.join(map(str, MIN_REDIS_VERSION))} or newer"))
    else:
        findings.append(Finding(Level.OK, "redis version", version))
    ping = statistics.median(times)
    if ping > SLOW_REDIS_MS:
        findings.append(Finding(Level.WARN, "redis latency", f"ping {ping:.1f} ms (median of {PINGS})",
                                "run Redis next to the app: each message costs two round trips"))
    else:
        findings.append(Finding(Level.OK, "redis latency", f"ping {ping:.1f} ms (median of {PINGS})"))
    policy = str(memory.get("maxmemory_policy", "unknown"))
    if policy != "noeviction":
        findings.append(Finding(
            Level.FAIL, "redis maxmemory-policy",
            f"{policy}: Redis may evict opt-outs, dedupe records and queued jobs when full",
            "set maxmemory-policy noeviction in redis.conf (now: CONFIG SET maxmemory-policy noeviction)"))
    else:
        findings.append(Finding(Level.OK, "redis maxmemory-policy", "noeviction"))
    return findings


def check_signature_url(inputs: DoctorInputs) -> list[Finding]:
    s = inputs.settings
    if s is None:
        return [Finding(Level.SKIP, "signature URL", "needs valid settings")]
    if not s.public_base_url:
        level = Level.FAIL if s.environment == "production" else Level.WARN
        return [Finding(level, "signature URL",
                        "PUBLIC_BASE_URL is unset: signatures are checked against the URL the app sees, "
                        "so behind a proxy or tunnel every webhook gets 403",
                        "set PUBLIC_BASE_URL to the https URL Twilio calls, e.g. https://bot.example.com")]
    try:
        urls = WebhookUrls.from_base(s.public_base_url)
    except ConfigError as exc:
        return [Finding(Level.FAIL, "signature URL", str(exc),
                        "PUBLIC_BASE_URL is scheme and host only; the bot adds /twilio/messages")]
    if urls.base.startswith("http://") and s.environment == "production":
        return [Finding(Level.WARN, "signature URL", f"{urls.messages} is plain http",
                        "serve https (Twilio signs over the exact URL; use the https one everywhere)")]
    return [Finding(Level.OK, "signature URL", f"Twilio must call {urls.messages} (bot connect --check compares)")]


def check_model(inputs: DoctorInputs) -> list[Finding]:
    s = inputs.settings
    if s is None or not s.llm_model:
        return [Finding(Level.SKIP, "model", "LLM_MODEL unset (the offline pipeline answers alone)")]
    factory = inputs.model_factory
    if factory is None:
        from bot.nlu.model import build_chat_model

        factory = build_chat_model
    try:
        model: Any = factory(s)
        started = time.perf_counter()
        asyncio.run(asyncio.wait_for(model.ainvoke("Reply with the word ok."), MODEL_TIMEOUT_SECONDS))
        took = time.perf_counter() - started
    except BotError as exc:
        return [Finding(Level.FAIL, "model", str(exc), "install the provider package or correct LLM_MODEL")]
    except Exception as exc:
        return [Finding(Level.FAIL, "model", f"{s.llm_model} did not answer: {type(exc).__name__}: {exc}",
                        "check LLM_BASE_URL, LLM_API_KEY and the network")]
    level = Level.WARN if took > s.llm_timeout_seconds else Level.OK
    return [Finding(level, "model", f"{s.llm_model} answered in {took:.1f} s",
                    f"its answers take longer than LLM_TIMEOUT_SECONDS={s.llm_timeout_seconds:g}")]


def check_content_templates(inputs: DoctorInputs) -> list[Finding]:
    s = inputs.settings
    if s is None:
        return [Finding(Level.SKIP, "content templates", "needs valid settings")]
    from bot.outbound.templates import ContentTemplates

    path = Path(s.intents_dir) / "templates.yaml"
    if not path.exists():
        return [Finding(Level.SKIP, "content templates", f"{path} missing (no WhatsApp templates)")]
    try:
        registry = ContentTemplates.load(path)
    except BotError as exc:
        return [Finding(Level.FAIL, "content templates", str(exc), f"correct {path}")]
    factory = inputs.twilio_factory
    if factory is None:
        from bot.golive.twilio_admin import admin_client

        factory = admin_client
    from twilio.base.exceptions import TwilioException

    try:
        listed = factory(s).content.v1.content_and_approvals.list()
    except TwilioException as exc:
        return [Finding(Level.FAIL, "content templates", f"Twilio refused the listing: {twilio_reason(exc)}",
                        "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")]
    except OSError as exc:
        return [Finding(Level.FAIL, "content templates", f"Twilio unreachable: {exc}", "check the network")]
    status = {str(item.sid).lower(): _approval(item.approval_requests) for item in listed}
    findings = []
    for template in registry:
        sid = template.content_sid
        found = status.get(sid.lower())
        if found is None:
            findings.append(Finding(Level.FAIL, f"template {template.ref}", f"{sid} is not in this Twilio account",
                                    "create it in Content Template Builder and paste its SID in templates.yaml"))
        elif found != "approved":
            findings.append(Finding(Level.FAIL, f"template {template.ref}",
                                    f"{sid} WhatsApp approval is {found}: outside the 24 h window it fails (63016)",
                                    "submit it for WhatsApp approval in Content Template Builder"))
        else:
            findings.append(Finding(Level.OK, f"template {template.ref}", f"{sid} approved"))
    return findings


# The checks, in the order they print.
CHECKS: Sequence[Check] = (check_settings, check_redis, check_signature_url, check_model, check_content_templates)


def run_doctor(inputs: DoctorInputs, checks: Sequence[Check] = CHECKS) -> list[Finding]:
    """Every finding of every check, in order."""
    return [finding for check in checks for finding in check(inputs)]


def exit_status(findings: Sequence[Finding]) -> int:
    """1 when anything failed, else 0."""
    return 1 if any(f.level is Level.FAIL for f in findings) else 0


def _approval(requests: Any) -> str:
    # ContentAndApprovals: approval_requests is {"name", "category", "status", ...} ({} when never submitted).
    if isinstance(requests, dict):
        inner = requests.get("whatsapp", requests)
        if isinstance(inner, dict) and inner.get("status"):
            return str(inner["status"])
    return "unsubmitted"


def _safe_url(url: str) -> str:
    # Never print a password in a Redis URL.
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"

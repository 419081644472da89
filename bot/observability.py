"""Structured JSON logs with masking, and Prometheus metrics per app.

Phone numbers and message bodies never reach the logs in clear: use
:func:`mask_phone` and :func:`mask_text` on anything a user typed or owns.
Metrics live on a registry owned by each app instance (no global state), so
two apps in one test process do not share counters.

Example::

    log = logging.getLogger("bot.engine")
    log.info("turn", extra={"fields": {"user": mask_phone(msg.user), "body": mask_text(msg.body)}})
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram


def mask_phone(number: str | None) -> str:
    """Keep the country code start and the last two digits.

    >>> mask_phone("whatsapp:+14155550123")
    'whatsapp:+141*******23'
    """
    if not number:
        return ""
    prefix, sep, rest = number.rpartition(":")
    head = prefix + sep
    if len(rest) <= 5:
        return head + "*" * len(rest)
    return head + rest[:4] + "*" * (len(rest) - 6) + rest[-2:]


def mask_text(text: str | None) -> str:
    """Replace a message body by its length: content is personal data.

    >>> mask_text("my card number is 1234")
    '<22 chars>'
    """
    return f"<{len(text or '')} chars>"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Send the ``bot``/``webhooks``/``devtools`` loggers to stderr, as JSON by default."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    for name in ("bot", "webhooks", "devtools"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class Metrics:
    """The Prometheus metrics of one app instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "bot_http_requests", "HTTP requests by endpoint and status",
            ["endpoint", "status"], registry=r,
        )
        self.latency = Histogram(
            "bot_http_request_seconds", "Request latency by endpoint", ["endpoint"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
            registry=r,
        )
        self.turns = Counter(
            "bot_turns", "Turns run, by channel and intent", ["channel", "intent"], registry=r
        )
        self.duplicates = Counter(
            "bot_duplicate_deliveries", "Retried deliveries answered from cache", registry=r
        )
        self.opt_outs = Counter(
            "bot_opt_changes", "Opt-out and opt-in changes", ["channel", "action"], registry=r
        )
        self.errors = Counter("bot_errors", "Errors by kind", ["kind"], registry=r)
        self.segments = Counter(
            "bot_reply_segments", "SMS segments sent in replies, by encoding",
            ["encoding"], registry=r,
        )
        self.replies = Counter(
            "bot_replies", "Replies sent, by channel and way", ["channel", "via"], registry=r
        )
        # Outbound REST (bot/outbound): one outcome per send request.
        self.outbound = Counter(
            "bot_outbound_messages", "Outbound REST sends by channel, purpose and outcome",
            ["channel", "purpose", "outcome"], registry=r,
        )
        self.outbound_errors = Counter(
            "bot_outbound_errors", "Twilio errors on send attempts, by code and retryability",
            ["code", "retryable"], registry=r,
        )
        self.status_callbacks = Counter(
            "bot_status_callbacks", "Status callbacks (once per message and status), by status and error code",
            ["status", "error_code"], registry=r,
        )
        self.jobs = Counter("bot_jobs", "Background jobs by name and outcome", ["job", "outcome"], registry=r)

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
import threading
import time
from types import TracebackType
from typing import Any, Final

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


#: Label for any value from outside (Twilio) that is not in a metric's closed set.
OTHER: Final = "other"

#: Twilio error codes this project knows (FACTS.md); any other is labelled ``other``.
KNOWN_ERROR_CODES: Final = frozenset({
    20003, 20404, 20429, 20500, 20503, 21211, 21212, 21408, 21606, 21610, 21611, 21612, 21614, 21617, 21619,
    30003, 30004, 30005, 30006, 30007, 30008, 30034,
    63015, 63016, 63018, 63021, 63024, 63027, 63028,
})


def error_code_label(code: int | None) -> str:
    """A Twilio error code as a metric label: ``""`` for none, ``other`` for unknown ones.

    >>> error_code_label(None), error_code_label(21610), error_code_label(99999)
    ('', '21610', 'other')
    """
    if code is None:
        return ""
    return str(code) if code in KNOWN_ERROR_CODES else OTHER


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


#: Library loggers whose own handlers would print plain text (uvicorn's
#: "Exception in ASGI application" traceback, arq, asyncio's "Task exception
#: was never retrieved"): they go through the one JSON handler instead.
LIBRARY_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "arq", "asyncio", "httpx", "twilio")


def configure_logging(level: str = "INFO", *, json_logs: bool = True) -> None:
    """Every log line of the process to stderr, as one JSON object per line by default.

    One handler on the root logger: the ``bot``/``webhooks``/``devtools`` loggers at
    ``level``, every library at WARNING and above; tracebacks are a field
    (``exc``) of their line. Uncaught exceptions (main thread and others) are
    logged the same way instead of Python's plain-text dump.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_logs else logging.Formatter("%(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("bot", "webhooks", "devtools"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(level.upper())
        logger.propagate = True
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.WARNING)
        logger.propagate = True
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, exc, tb)
        return
    logging.getLogger("bot").critical("uncaught exception", exc_info=(kind, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_traceback is None:
        return
    logging.getLogger("bot").critical(
        "uncaught exception in a thread", exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        extra={"fields": {"thread": getattr(args.thread, "name", None)}},
    )


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
        # Quiet hours (docs/outbound.md): messages the bot starts, held until the recipient's allowed hours.
        self.outbound_held = Counter(
            "bot_outbound_held", "Bot-started messages held for quiet hours, by reason", ["reason"], registry=r,
        )
        # Voice calls: each call counted once, by its final status, and timed.
        self.calls = Counter("bot_calls", "Calls by final status", ["status"], registry=r)
        self.call_seconds = Histogram(
            "bot_call_seconds", "Call duration (CallDuration of completed calls)",
            buckets=(5, 15, 30, 60, 120, 180, 300, 600, 1200, 3600), registry=r,
        )
        # Staff email (bot/mail): sent, retry (429/5xx/network, tried again), failed (4xx or out of tries), duplicate.
        self.emails = Counter("bot_emails", "Staff emails by result", ["result"], registry=r)
        # Appointment statuses (bot/confirmations): each change counted once, by the status it reached.
        self.appointments = Counter(
            "bot_appointments", "Appointment status changes, by the status reached", ["status"], registry=r,
        )

"""SendGrid's ``POST /v3/mail/send``, served locally for development and tests.

The official ``sendgrid`` library works unchanged with ``host`` pointed here
(``SENDGRID_API_BASE_URL``). Answers as SendGrid does: 202 with an empty body;
401 without ``Authorization: Bearer <key>`` (or with another key); 400 with
SendGrid's error body ``{"errors": [{"message", "field", "help"}]}`` for a body
that breaks the v3 spec's schema (a copy of the spec's request schema ships
beside this module) or SendGrid's own rules (at least one recipient, content
values not empty). Accepted emails are kept in memory for the dev phone's
*Staff inbox* and for tests.

Example::

    inbox = LocalSendGrid(api_key="SG.dev")
    app.include_router(create_sendgrid_router(inbox))
    SendGridAPIClient(api_key="SG.dev", host="http://127.0.0.1:8010").send(mail)
    inbox.emails[-1].subject
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

SCHEMA_FILE = Path(__file__).with_name("data") / "sendgrid_mail_send.schema.json"


@cache
def mail_send_schema() -> dict[str, Any]:
    """The request body schema of ``POST /v3/mail/send`` from SendGrid's v3 spec."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return schema


@dataclass(frozen=True)
class ReceivedEmail:
    """One email SendGrid accepted: what the staff inbox shows."""

    message_id: str
    to: tuple[str, ...]
    from_email: str
    subject: str
    text: str
    html: str
    received_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id, "to": list(self.to), "from": self.from_email,
            "subject": self.subject, "text": self.text, "html": self.html,
            "received_at": self.received_at.isoformat(),
        }


@dataclass
class LocalSendGrid:
    """The emails accepted so far, and the key that is accepted."""

    api_key: str
    emails: list[ReceivedEmail] = field(default_factory=list)
    #: Called with each accepted email (the dev phone's live inbox).
    listeners: list[Callable[[ReceivedEmail], None]] = field(default_factory=list)
    #: Statuses to answer instead of 202, one per request, then 202 again (tests inject 429/500).
    fail_next: list[int] = field(default_factory=list)

    def accept(self, body: dict[str, Any]) -> ReceivedEmail:
        contents = {c["type"]: c["value"] for c in body.get("content", [])}
        email = ReceivedEmail(
            message_id=secrets.token_hex(11),
            to=tuple(t["email"] for p in body["personalizations"] for t in p.get("to", [])),
            from_email=body["from"]["email"],
            subject=body.get("subject") or body["personalizations"][0].get("subject", ""),
            text=contents.get("text/plain", ""),
            html=contents.get("text/html", ""),
            received_at=datetime.now(UTC),
        )
        self.emails.append(email)
        for listener in list(self.listeners):
            listener(email)
        return email


def _errors(status: int, *items: tuple[str, str | None]) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"message": message, "field": fld} for message, fld in items]},
        status_code=status,
    )


def body_problems(body: Any) -> list[tuple[str, str | None]]:
    """What SendGrid would reject in a mail/send body: (message, field) pairs; none: valid.

    >>> body_problems({"personalizations": [{"to": [{"email": "a@b.co"}]}], "from": {"email": "x@y.co"},
    ...                "subject": "Hi", "content": [{"type": "text/plain", "value": "Hello"}]})
    []
    """
    if not isinstance(body, dict):
        return [("Bad Request", None)]
    problems: list[tuple[str, str | None]] = []
    if isinstance(body.get("personalizations"), list) and not body["personalizations"]:
        problems.append(("The personalizations field is required and must have at least one personalization.",
                         "personalizations"))
    validator = jsonschema.Draft4Validator(mail_send_schema())
    for error in sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path) or None
        problems.append((error.message, path))
    if problems:
        return problems
    for index, personalization in enumerate(body["personalizations"]):
        if not personalization.get("to"):
            problems.append(("The to array is required for all personalization objects, and must have at "
                             "least one email object with a valid email address.",
                             f"personalizations.{index}.to"))
    for index, content in enumerate(body.get("content", [])):
        if not content.get("value"):
            problems.append(("The content value must be a string at least one character in length.",
                             f"content.{index}.value"))
    return problems


def create_sendgrid_router(sendgrid: LocalSendGrid) -> APIRouter:
    """``POST /v3/mail/send`` bound to ``sendgrid``."""
    router = APIRouter()

    @router.post("/v3/mail/send")
    async def mail_send(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not secrets.compare_digest(auth.encode(), f"Bearer {sendgrid.api_key}".encode()):
            return _errors(401, ("The provided authorization grant is invalid, expired, or revoked", None))
        if sendgrid.fail_next:
            status = sendgrid.fail_next.pop(0)
            return _errors(status, ("simulated failure", None))
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, UnicodeDecodeError):
            return _errors(400, ("Bad Request", None))
        if problems := body_problems(body):
            return _errors(400, *problems)
        email = sendgrid.accept(body)
        return Response(status_code=202, headers={"X-Message-Id": email.message_id})

    return router

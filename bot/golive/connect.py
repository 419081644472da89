"""``bot connect``: point a Twilio number (or Messaging Service) at the bot, or check that it is.

The wanted configuration is a table of (resource field, wanted value) pairs
built from the public base URL; :func:`connect` compares it with what Twilio
has, changes what differs through the official SDK and reports each change;
with ``check=True`` it only reads and reports mismatches. A WhatsApp sender
for the number whose webhook points elsewhere is reported too.

Example::

    report = connect(client, ConnectRequest(number="+15005550006",
                                            urls=WebhookUrls.from_base("https://bot.example.com")))
    for line in report.lines():
        print(line)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.errors import BotError
from bot.golive.twilio_admin import twilio_reason
from bot.golive.urls import WebhookUrls


class ConnectError(BotError):
    """The number or service cannot be found or changed (one clear line for the CLI)."""


@dataclass(frozen=True, slots=True)
class Wanted:
    """One field of a Twilio resource and the value the bot needs there."""

    field: str  # the SDK's attribute / update keyword, e.g. "sms_url"
    value: str
    label: str  # how the Console names it
    required: bool = True  # False: a missing value is reported but not a wrong one (fallback URLs)


@dataclass(frozen=True, slots=True)
class Change:
    """A field that differs: what Twilio has and what the bot wants."""

    resource: str
    label: str
    field: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ConnectRequest:
    """What to connect: a number and/or a Messaging Service, the bot's URLs, an optional fallback URL."""

    urls: WebhookUrls
    number: str | None = None
    messaging_service: str | None = None
    fallback_url: str | None = None
    voice: bool = True


@dataclass
class ConnectReport:
    """What was changed (or, when checking, what differs) and what else needs attention."""

    check: bool
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Checking: nothing differs and nothing needs attention. Connecting: nothing needs attention."""
        return not self.problems and not (self.check and self.changes)

    def lines(self) -> list[str]:
        out = []
        for change in self.changes:
            old = change.old or "(not set)"
            if self.check:
                out.append(f"mismatch  {change.resource} {change.label}: {old}, should be {change.new}")
            else:
                out.append(f"changed   {change.resource} {change.label}: {old} -> {change.new}")
        out += [f"problem   {problem}" for problem in self.problems]
        out += [f"ok        {note}" for note in self.notes]
        if not self.changes and not self.problems:
            out.append("ok        everything already points at the bot" if self.check else
                       "ok        nothing to change: everything already points at the bot")
        return out


def number_table(request: ConnectRequest, *, via_service: bool) -> list[Wanted]:
    """The number's fields the bot needs (messaging ones only when no Messaging Service handles inbound)."""
    urls = request.urls
    table: list[Wanted] = []
    if not via_service:
        table += [Wanted("sms_url", urls.messages, "SMS URL (A message comes in)"),
                  Wanted("sms_method", "POST", "SMS method")]
        table.append(Wanted("sms_fallback_url", request.fallback_url or "", "SMS fallback URL",
                            required=bool(request.fallback_url)))
    if request.voice:
        table += [Wanted("voice_url", urls.voice, "voice URL (A call comes in)"),
                  Wanted("voice_method", "POST", "voice method"),
                  Wanted("status_callback", urls.voice_status, "call status callback URL"),
                  Wanted("status_callback_method", "POST", "call status callback method")]
        if request.fallback_url:
            table.append(Wanted("voice_fallback_url", request.fallback_url, "voice fallback URL"))
    return table


def service_table(request: ConnectRequest) -> list[Wanted]:
    """The Messaging Service's fields: inbound URL, delivery status callback, fallback."""
    urls = request.urls
    return [
        Wanted("inbound_request_url", urls.messages, "inbound request URL"),
        Wanted("inbound_method", "POST", "inbound method"),
        Wanted("status_callback", urls.status, "delivery status callback URL"),
        Wanted("fallback_url", request.fallback_url or "", "fallback URL", required=bool(request.fallback_url)),
    ]


def _diff(resource: str, instance: Any, table: list[Wanted]) -> tuple[list[Change], list[str]]:
    changes, problems = [], []
    for wanted in table:
        current = str(getattr(instance, wanted.field, "") or "")
        if not wanted.required:
            if not current:
                problems.append(f"{resource} has no {wanted.label}: when the bot cannot answer, Twilio has nothing "
                                f"to fall back on (pass --fallback-url, e.g. a TwiML Bin with a short apology)")
            continue
        if _same(current, wanted.value, wanted.field):
            continue
        changes.append(Change(resource, wanted.label, wanted.field, current, wanted.value))
    return changes, problems


def _same(current: str, wanted: str, name: str) -> bool:
    if name.endswith("method"):
        return current.upper() == wanted.upper()
    return current.rstrip("/") == wanted.rstrip("/")


def connect(client: Any, request: ConnectRequest, *, check: bool = False) -> ConnectReport:
    """Compare (and unless ``check``, update) the number / service; report what changed or differs."""
    from twilio.base.exceptions import TwilioException

    report = ConnectReport(check=check)
    try:
        if request.messaging_service:
            _connect_service(client, request, report)
        if request.number:
            _connect_number(client, request, report)
            _check_whatsapp_sender(client, request, report)
    except TwilioException as exc:
        raise ConnectError(f"Twilio refused: {twilio_reason(exc)}") from None
    return report


def _connect_service(client: Any, request: ConnectRequest, report: ConnectReport) -> None:
    sid = str(request.messaging_service)
    service = client.messaging.v1.services(sid).fetch()
    resource = f"Messaging Service {sid}"
    changes, problems = _diff(resource, service, service_table(request))
    if getattr(service, "use_inbound_webhook_on_number", False):
        changes.append(Change(resource, "use the number's own webhook", "use_inbound_webhook_on_number",
                              "true", "false"))
    report.changes += changes
    report.problems += problems
    if changes and not report.check:
        client.messaging.v1.services(sid).update(**{c.field: _value(c) for c in changes})


def _connect_number(client: Any, request: ConnectRequest, report: ConnectReport) -> None:
    number = str(request.number)
    found = [n for n in client.incoming_phone_numbers.list(phone_number=number) if n.phone_number == number]
    if not found:
        raise ConnectError(f"{number} is not a number of this Twilio account (Console: Phone Numbers > Active)")
    instance = found[0]
    resource = f"number {number}"
    changes, problems = _diff(resource, instance, number_table(request, via_service=bool(request.messaging_service)))
    report.changes += changes
    report.problems += problems
    if changes and not report.check:
        client.incoming_phone_numbers(instance.sid).update(**{c.field: c.new for c in changes})


def _check_whatsapp_sender(client: Any, request: ConnectRequest, report: ConnectReport) -> None:
    sender_id = f"whatsapp:{request.number}"
    senders = [s for s in client.messaging.v2.channels_senders.list(channel="whatsapp") if s.sender_id == sender_id]
    if not senders:
        report.notes.append(f"no WhatsApp sender for {request.number} (the sandbox is set in the Console: "
                            "docs/going-live.md)")
        return
    webhook = senders[0].webhook  # the SDK keeps it as the JSON object
    callback = str(webhook.get("callback_url") or "") if isinstance(webhook, dict) else ""
    if callback and not _same(callback, request.urls.messages, "callback_url"):
        report.problems.append(
            f"WhatsApp sender {sender_id} sends messages to {callback}, not to the bot ({request.urls.messages}): "
            "change its webhook in the Console (Messaging > Senders > WhatsApp senders)")
    else:
        report.notes.append(f"WhatsApp sender {sender_id} {'points at the bot' if callback else 'uses the number'}")


def _value(change: Change) -> Any:
    if change.field == "use_inbound_webhook_on_number":
        return change.new == "true"
    return change.new

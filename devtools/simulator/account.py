"""The simulated account's set-up resources: phone numbers, Messaging Services, WhatsApp senders, approvals.

What ``bot connect`` and ``bot doctor`` read and change through the official
SDK. Shapes follow Twilio: the IncomingPhoneNumber resource of
``twilio_api_v2010.json`` (checked by ``tests/bot/simulator/test_numbers.py``),
Messaging v1 Services, Messaging v2 Channels/Senders and Content v1
ContentAndApprovals.

Example::

    sim.account.add_number("+15005550006")
    sim.account.add_whatsapp_sender("+15005550006", callback_url="https://old.example.com/hook")
    sim.account.set_approval("HX" + "1" * 32, "rejected")
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from bot.clock import Clock
from devtools.simulator.message import rfc2822
from devtools.simulator.rules import API_VERSION

# Form field (as Twilio names it) -> resource property, for an IncomingPhoneNumber update.
NUMBER_FIELDS = {
    "FriendlyName": "friendly_name",
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "SmsFallbackUrl": "sms_fallback_url",
    "SmsFallbackMethod": "sms_fallback_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
    "VoiceFallbackUrl": "voice_fallback_url",
    "VoiceFallbackMethod": "voice_fallback_method",
}
SERVICE_FIELDS = {
    "FriendlyName": "friendly_name",
    "InboundRequestUrl": "inbound_request_url",
    "InboundMethod": "inbound_method",
    "FallbackUrl": "fallback_url",
    "FallbackMethod": "fallback_method",
    "StatusCallback": "status_callback",
    "UseInboundWebhookOnNumber": "use_inbound_webhook_on_number",
}
METHODS = frozenset({"GET", "POST"})


@dataclass
class SimNumber:
    """One IncomingPhoneNumber: the URLs Twilio calls for it."""

    sid: str
    account_sid: str
    phone_number: str
    created: datetime
    updated: datetime
    friendly_name: str = ""
    sms_url: str = ""
    sms_method: str = "POST"
    sms_fallback_url: str = ""
    sms_fallback_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"
    voice_url: str = ""
    voice_method: str = "POST"
    voice_fallback_url: str = ""
    voice_fallback_method: str = "POST"

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio returns (every property of the spec's schema)."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{self.sid}.json"
        return {
            "account_sid": self.account_sid,
            "address_sid": None,
            "address_requirements": "none",
            "api_version": API_VERSION,
            "beta": False,
            "capabilities": {"voice": True, "sms": True, "mms": True, "fax": False},
            "date_created": rfc2822(self.created),
            "date_updated": rfc2822(self.updated),
            "friendly_name": self.friendly_name or self.phone_number,
            "identity_sid": None,
            "phone_number": self.phone_number,
            "origin": "twilio",
            "sid": self.sid,
            "sms_application_sid": None,
            "sms_fallback_method": self.sms_fallback_method,
            "sms_fallback_url": self.sms_fallback_url,
            "sms_method": self.sms_method,
            "sms_url": self.sms_url,
            "status_callback": self.status_callback,
            "status_callback_method": self.status_callback_method,
            "trunk_sid": None,
            "uri": uri,
            "voice_receive_mode": "voice",
            "voice_application_sid": None,
            "voice_caller_id_lookup": False,
            "voice_fallback_method": self.voice_fallback_method,
            "voice_fallback_url": self.voice_fallback_url,
            "voice_method": self.voice_method,
            "voice_url": self.voice_url,
            "emergency_status": "Inactive",
            "emergency_address_sid": None,
            "emergency_address_status": "unregistered",
            "bundle_sid": None,
            "status": "in-use",
            "type": "local",
        }


@dataclass
class SimService:
    """A Messaging Service's webhook settings."""

    sid: str
    account_sid: str
    created: datetime
    updated: datetime
    friendly_name: str = "Messaging Service"
    inbound_request_url: str = ""
    inbound_method: str = "POST"
    fallback_url: str = ""
    fallback_method: str = "POST"
    status_callback: str = ""
    use_inbound_webhook_on_number: bool = False

    def resource(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("created")
        data.pop("updated")
        data.update(date_created=self.created.isoformat().replace("+00:00", "Z"),
                    date_updated=self.updated.isoformat().replace("+00:00", "Z"),
                    url=f"https://messaging.twilio.com/v1/Services/{self.sid}")
        return data


@dataclass
class SimSender:
    """A WhatsApp sender (Messaging v2 Channels/Senders) and where its messages go."""

    sid: str
    sender_id: str
    callback_url: str = ""
    fallback_url: str = ""
    status_callback_url: str = ""
    status: str = "ONLINE"

    def resource(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "status": self.status,
            "sender_id": self.sender_id,
            "configuration": {},
            "webhook": {
                "callback_url": self.callback_url or None,
                "callback_method": "POST",
                "fallback_url": self.fallback_url or None,
                "fallback_method": "POST",
                "status_callback_url": self.status_callback_url or None,
                "status_callback_method": "POST",
            },
            "profile": {},
            "properties": {},
            "offline_reasons": [],
            "url": f"https://messaging.twilio.com/v2/Channels/Senders/{self.sid}",
        }


@dataclass
class SimAccount:
    """The set-up side of the simulated account (numbers, services, senders, template approvals)."""

    account_sid: str
    clock: Clock
    rng: random.Random = field(default_factory=random.Random)
    numbers: dict[str, SimNumber] = field(default_factory=dict)
    services: dict[str, SimService] = field(default_factory=dict)
    senders: dict[str, SimSender] = field(default_factory=dict)
    # ContentSid -> WhatsApp approval status; a registered template not listed here is "approved".
    approvals: dict[str, str] = field(default_factory=dict)

    def _sid(self, prefix: str) -> str:
        return prefix + "".join(self.rng.choice("0123456789abcdef") for _ in range(32))

    def add_number(self, phone_number: str, **urls: str) -> SimNumber:
        """Own ``phone_number`` (E.164), optionally with URLs already set (``sms_url=...``)."""
        now = self.clock.now()
        number = SimNumber(sid=self._sid("PN"), account_sid=self.account_sid, phone_number=phone_number,
                           created=now, updated=now, **urls)
        self.numbers[number.sid] = number
        return number

    def number_by_phone(self, phone_number: str) -> SimNumber | None:
        return next((n for n in self.numbers.values() if n.phone_number == phone_number), None)

    def update_number(self, number: SimNumber, form: dict[str, str]) -> None:
        """Apply an update form; raises ``ValueError`` naming a bad field."""
        for name, value in form.items():
            attr = NUMBER_FIELDS.get(name)
            if attr is None:
                continue  # Twilio accepts fields this simulator does not model
            if attr.endswith("method") and value.upper() not in METHODS:
                raise ValueError(f"{name} must be GET or POST")
            if attr.endswith(("url", "callback")) and value and not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL")
            setattr(number, attr, value.upper() if attr.endswith("method") else value)
        number.updated = self.clock.now()

    def add_service(self, sid: str | None = None, **values: Any) -> SimService:
        now = self.clock.now()
        service = SimService(sid=sid or self._sid("MG"), account_sid=self.account_sid, created=now, updated=now,
                             **values)
        self.services[service.sid] = service
        return service

    def update_service(self, service: SimService, form: dict[str, str]) -> None:
        for name, value in form.items():
            attr = SERVICE_FIELDS.get(name)
            if attr is None:
                continue
            is_url = attr.endswith("url") or attr == "status_callback"
            if is_url and value and not value.startswith(("http://", "https://")):
                raise ValueError(f"{name} must be an http(s) URL")
            if attr == "use_inbound_webhook_on_number":
                setattr(service, attr, value.lower() == "true")
            else:
                setattr(service, attr, value)
        service.updated = self.clock.now()

    def add_whatsapp_sender(self, phone_number: str, **webhook: str) -> SimSender:
        sender = SimSender(sid=self._sid("XE"), sender_id=f"whatsapp:{phone_number}", **webhook)
        self.senders[sender.sid] = sender
        return sender

    def set_approval(self, content_sid: str, status: str) -> None:
        """Mark a content template's WhatsApp approval (``approved``, ``pending``, ``rejected``, ``unsubmitted``)."""
        self.approvals[content_sid] = status

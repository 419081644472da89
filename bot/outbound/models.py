"""What goes into the sender and what comes out, plus their JSON forms for jobs.

A :class:`SendRequest` is channel-neutral: the sender decides between
free-form text, a content template or the SMS fallback text. Jobs carry
requests (and inbound messages, for re-run turns) as plain JSON, never
pickles, so a queued job survives a code change that moves a class.

Example::

    request = SendRequest(
        key=ConversationKey(Channel.WHATSAPP, "+15005550006", "+14155550123"),
        template=TemplateMessage("appointment_reminder", {"name": "Ana", "service": "cleaning",
                                                          "time": "Tue, Mar 3 at 3:00 PM"}),
        idempotency_key="reminder:ap1", purpose="reminder",
    )
    SendRequest.from_dict(request.to_dict()) == request  # True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, get_args

from bot.messages import Channel, Choice, InboundMessage, Location, Media, OptOutType, TemplateMessage
from bot.storage.base import ConversationKey

#: Why a message is sent: a seam for per-purpose rules (quiet hours) later.
Purpose = Literal["reply", "reminder", "broadcast", "handoff", "handoff_return", "followup", "recall"]
PURPOSES: Final = frozenset(get_args(Purpose))
MAX_IDEMPOTENCY_KEY = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    """One message the bot wants to send through the REST API.

    ``idempotency_key`` names the send for good ("reply:SMxxx:0",
    "reminder:<appointment id>", "bcast:<campaign>:<number>"): a second send
    with a key that already succeeded sends nothing and returns the first result.

    ``template`` asks for an approved content template (WhatsApp) or its SMS
    fallback text (SMS). ``choices`` become quick-reply buttons on WhatsApp
    within the 24 h window, numbered lines otherwise. ``fallback_template``
    is sent instead of free-form text outside the window. ``compliance``
    marks a STOP/START/HELP answer, the one kind allowed to an opted-out user.
    ``last_inbound_at`` (epoch seconds) is a newer inbound time than the
    store may have yet: a turn in progress knows the user just wrote.
    """

    key: ConversationKey
    idempotency_key: str
    body: str = ""
    media: tuple[str, ...] = ()
    template: TemplateMessage | None = None
    choices: tuple[Choice, ...] = ()
    fallback_template: TemplateMessage | None = None
    purpose: Purpose = "reply"
    campaign: str | None = None
    compliance: bool = False
    last_inbound_at: float | None = None

    def __post_init__(self) -> None:
        if not self.idempotency_key or len(self.idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ValueError(f"idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY} characters")
        if self.purpose not in PURPOSES:
            raise ValueError(f"purpose must be one of {sorted(PURPOSES)}")
        if not (self.body.strip() or self.media or self.template or self.choices):
            raise ValueError("nothing to send: give a body, media, choices or a template")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for job payloads)."""
        return {
            "key": _key_to_list(self.key),
            "idempotency_key": self.idempotency_key,
            "body": self.body,
            "media": list(self.media),
            "template": _template_to_dict(self.template),
            "choices": [[c.payload, c.title] for c in self.choices],
            "fallback_template": _template_to_dict(self.fallback_template),
            "purpose": self.purpose,
            "campaign": self.campaign,
            "compliance": self.compliance,
            "last_inbound_at": self.last_inbound_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SendRequest:
        return cls(
            key=_key_from_list(data["key"]),
            idempotency_key=data["idempotency_key"],
            body=data.get("body", ""),
            media=tuple(data.get("media", ())),
            template=_template_from_dict(data.get("template")),
            choices=tuple(Choice(p, t) for p, t in data.get("choices", ())),
            fallback_template=_template_from_dict(data.get("fallback_template")),
            purpose=data.get("purpose", "reply"),
            campaign=data.get("campaign"),
            compliance=bool(data.get("compliance", False)),
            last_inbound_at=data.get("last_inbound_at"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SendResult:
    """What Twilio accepted for one request.

    ``duplicate``: the idempotency key had already been sent; nothing was
    sent now and this is the first send's result. ``template``: the content
    template used (its name), if any; ``window_fallback``: a template went
    instead of free-form text because the WhatsApp window was closed.
    """

    sid: str
    status: str
    idempotency_key: str
    channel: Channel
    template: str | None = None
    duplicate: bool = False
    window_fallback: bool = False


def inbound_to_dict(msg: InboundMessage) -> dict[str, Any]:
    """An :class:`InboundMessage` as JSON-ready data (for the re-run-turn job)."""
    location = msg.location
    return {
        "message_sid": msg.message_sid,
        "channel": msg.channel.value,
        "user": msg.user,
        "bot": msg.bot,
        "body": msg.body,
        "account_sid": msg.account_sid,
        "messaging_service_sid": msg.messaging_service_sid,
        "media": [[m.url, m.content_type] for m in msg.media],
        "location": None if location is None else [
            location.latitude, location.longitude, location.address, location.label
        ],
        "button_payload": msg.button_payload,
        "button_text": msg.button_text,
        "profile_name": msg.profile_name,
        "wa_id": msg.wa_id,
        "opt_out_type": None if msg.opt_out_type is None else msg.opt_out_type.value,
        "message_type": msg.message_type,
        "num_segments": msg.num_segments,
        "original_replied_message_sid": msg.original_replied_message_sid,
        "idempotency_token": msg.idempotency_token,
        "extra": dict(msg.extra),
        "turn": msg.turn,
    }


def inbound_from_dict(data: Mapping[str, Any]) -> InboundMessage:
    """The inverse of :func:`inbound_to_dict`."""
    location = data.get("location")
    opt_out = data.get("opt_out_type")
    return InboundMessage(
        message_sid=data["message_sid"],
        channel=Channel(data["channel"]),
        user=data["user"],
        bot=data["bot"],
        body=data.get("body", ""),
        account_sid=data.get("account_sid", ""),
        messaging_service_sid=data.get("messaging_service_sid"),
        media=tuple(Media(url, kind) for url, kind in data.get("media", ())),
        location=None if location is None else Location(*location),
        button_payload=data.get("button_payload"),
        button_text=data.get("button_text"),
        profile_name=data.get("profile_name"),
        wa_id=data.get("wa_id"),
        opt_out_type=None if opt_out is None else OptOutType(opt_out),
        message_type=data.get("message_type"),
        num_segments=data.get("num_segments"),
        original_replied_message_sid=data.get("original_replied_message_sid"),
        idempotency_token=data.get("idempotency_token"),
        extra=_frozen(data.get("extra") or {}),
        turn=data.get("turn"),
    )


def _frozen(values: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(values))


def _key_to_list(key: ConversationKey) -> list[str]:
    return [key.channel.value, key.bot, key.user]


def _key_from_list(raw: list[str]) -> ConversationKey:
    channel, bot, user = raw
    return ConversationKey(Channel(channel), bot, user)


def _template_to_dict(template: TemplateMessage | None) -> dict[str, Any] | None:
    if template is None:
        return None
    # The language only when it is a variant's: a job queued before variants existed reads the same.
    language = {} if template.language is None else {"language": template.language}
    return {"name": template.name, "variables": dict(template.variables), **language}


def _template_from_dict(raw: Mapping[str, Any] | None) -> TemplateMessage | None:
    if raw is None:
        return None
    return TemplateMessage(raw["name"], _frozen({k: str(v) for k, v in raw.get("variables", {}).items()}),
                           raw.get("language"))


__all__ = [
    "PURPOSES",
    "Purpose",
    "SendRequest",
    "SendResult",
    "inbound_from_dict",
    "inbound_to_dict",
]

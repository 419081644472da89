"""Staff events that become emails: what happened, to whom, and its idempotency key.

An event is small and JSON-safe: it travels through the job queue. It carries
what only the turn knows (the last turns, masked, including the message that
asked for a person); the worker gathers the rest (upcoming appointments) when
it builds the email, off the webhook path.

Example::

    event = StaffEvent.handoff(key, reason="urgent", message_sid="SM1", profile_name="Ana", at=now)
    event.event_id          # "handoff:SM1"
    StaffEvent.from_dict(event.to_dict()) == event
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final

from bot.business import Words
from bot.mail.compose import mask_contacts
from bot.messages import Channel
from bot.storage import ConversationKey

#: Why a conversation went to staff, as staff read it, in the business's words (``words:`` in business.yaml).
HANDOFF_REASONS: Final = {
    "asked": "the {customer} asked for a person",
    "urgent": "possible {emergency}",
    "complaint": "complaint or upset {customer}",
    "unanswered_call": "a call to staff was not answered",
}


def handoff_reason(reason: str, words: Words, default: str | None = None) -> str:
    """Why a conversation went to staff, as staff read it.

    Example::

        handoff_reason("urgent", Words(customer="patient", emergency="dental emergency"))
        # 'possible dental emergency'
    """
    text = HANDOFF_REASONS.get(reason)
    if text is None:
        return default if default is not None else reason
    return text.format(customer=words.customer, emergency=words.emergency)


@dataclass(frozen=True)
class StaffEvent:
    """One event staff are emailed about (``kind``: handoff, optout or digest)."""

    event_id: str
    kind: str
    at: str
    reason: str = ""
    channel: str = ""
    bot: str = ""
    user: str = ""
    profile_name: str = ""
    #: The day a digest covers (ISO date, the business's zone).
    day: str = ""
    #: The conversation's last turns at the hand-off, (who, text), numbers and addresses already masked.
    turns: tuple[tuple[str, str], ...] = ()

    @classmethod
    def handoff(cls, key: ConversationKey, *, reason: str, message_sid: str, profile_name: str = "",
                at: datetime, turns: tuple[tuple[str, str], ...] = ()) -> StaffEvent:
        return cls(event_id=f"handoff:{message_sid}", kind="handoff", at=at.isoformat(), reason=reason,
                   channel=key.channel.value, bot=key.bot, user=key.user, profile_name=profile_name,
                   turns=tuple((who, mask_contacts(text)) for who, text in turns))

    @classmethod
    def optout(cls, key: ConversationKey, *, message_sid: str, at: datetime) -> StaffEvent:
        return cls(event_id=f"optout:{message_sid}", kind="optout", at=at.isoformat(),
                   channel=key.channel.value, bot=key.bot, user=key.user)

    @classmethod
    def digest(cls, day: str, *, at: datetime) -> StaffEvent:
        return cls(event_id=f"digest:{day}", kind="digest", at=at.isoformat(), day=day)

    @property
    def key(self) -> ConversationKey:
        return ConversationKey(Channel(self.channel), self.bot, self.user)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "turns": [list(t) for t in self.turns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StaffEvent:
        fields = {k: str(v) for k, v in data.items() if k in cls.__dataclass_fields__ and k != "turns"}
        turns = tuple((str(who), str(text)) for who, text in data.get("turns") or ())
        return cls(**fields, turns=turns)

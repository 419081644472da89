"""The conversation view's memory: the recent turns of each conversation.

:class:`TurnLog` is an engine observer (``runtime.engine.observers``): after
each committed turn it records what the Brain decided (intent, confidence,
slots, flow and step) and what the bot answered. It is bounded twice (turns
per conversation, number of conversations) and lives only in ``bot dev``.

Example::

    log = TurnLog()
    runtime.engine.observers.append(log.observe)
    ...                                   # turns run
    log.turns(ConversationKey(Channel.SMS, bot="+15005550006", user="+14155550100"))[-1].intent
"""

from __future__ import annotations

import json
from collections import OrderedDict, deque
from dataclasses import asdict, dataclass
from typing import Any

from bot.messages import InboundMessage, TurnResult
from bot.storage.base import ConversationKey, ConversationState


@dataclass(frozen=True, slots=True)
class TurnRecord:
    """One committed turn as the conversation view shows it."""

    at: float
    message_sid: str
    text: str
    intent: str | None
    confidence: float | None
    entities: dict[str, Any]
    slots: dict[str, Any]
    flow: str | None
    step: str | None
    replies: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["replies"] = list(self.replies)
        return data


@dataclass(frozen=True, slots=True)
class ConversationSummary:
    """A conversation the log knows, with its latest turn."""

    key: ConversationKey
    turns: int
    last: TurnRecord

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.key.channel.value,
            "bot": self.key.bot,
            "user": self.key.user,
            "turns": self.turns,
            "last": self.last.to_dict(),
        }


class TurnLog:
    """Recent turns per conversation, in memory, bounded (development only).

    Example::

        log = TurnLog(turns_per_conversation=50, conversations=200)
        engine.observers.append(log.observe)
    """

    def __init__(self, *, turns_per_conversation: int = 50, conversations: int = 200) -> None:
        self.turns_per_conversation = turns_per_conversation
        self.max_conversations = conversations
        self._log: OrderedDict[ConversationKey, deque[TurnRecord]] = OrderedDict()

    def observe(self, msg: InboundMessage, result: TurnResult, state: ConversationState) -> None:
        """The engine observer: record one committed turn (quick, never raises on odd data)."""
        key = ConversationKey(msg.channel, bot=msg.bot, user=msg.user)
        record = TurnRecord(
            at=_turn_time(state),
            message_sid=msg.message_sid,
            text=_inbound_text(msg),
            intent=result.intent,
            confidence=None if result.confidence is None else round(result.confidence, 4),
            entities=_plain(dict(result.entities)),
            slots=_plain(dict(state.slots)),
            flow=result.flow if result.flow is not None else state.flow,
            step=result.step if result.step is not None else state.step,
            replies=tuple(_reply_text(r.text, r.template.name if r.template else None) for r in result.replies),
        )
        turns = self._log.pop(key, None)
        if turns is None:
            turns = deque(maxlen=self.turns_per_conversation)
        turns.append(record)
        self._log[key] = turns  # most recently active last
        while len(self._log) > self.max_conversations:
            self._log.popitem(last=False)

    def turns(self, key: ConversationKey) -> list[TurnRecord]:
        """The recorded turns of one conversation, oldest first."""
        return list(self._log.get(key, ()))

    def conversations(self) -> list[ConversationSummary]:
        """Every conversation the log holds, most recently active first."""
        return [
            ConversationSummary(key=key, turns=len(turns), last=turns[-1])
            for key, turns in reversed(self._log.items())
            if turns
        ]


def _turn_time(state: ConversationState) -> float:
    """When the turn ran: the engine stamps ``last_inbound_at`` from its clock."""
    return state.last_inbound_at or 0.0


def _inbound_text(msg: InboundMessage) -> str:
    if msg.button_payload:
        return f"[button {msg.button_payload}] {msg.button_text or ''}".strip()
    if msg.location is not None:
        loc = msg.location
        return f"[location {loc.latitude}, {loc.longitude}] {loc.label or ''}".strip()
    if msg.media:
        return f"[{len(msg.media)} media] {msg.body}".strip()
    return msg.body


def _reply_text(text: str, template: str | None) -> str:
    return f"[template {template}] {text}".strip() if template else text


def _plain(value: dict[str, Any]) -> dict[str, Any]:
    # Slots and entities may hold dates or enums: keep a JSON-safe copy, so
    # later changes to the live state do not rewrite history.
    plain: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return plain

"""Opt-out, opt-in and help keywords, handled before any intent logic.

Rules (see docs/compliance.md):

- A single-word body (any case; surrounding spaces and punctuation ignored)
  that is a STOP word records an opt-out; START/UNSTOP (and YES while opted
  out) record an opt-in; HELP/INFO ask for help. Twilio's Advanced Opt-Out
  classification (``OptOutType``) wins when present.
- Natural-language revocations ("please stop texting me", "remove me from
  your list") are opt-outs too (FCC 24-24); Twilio does not catch those, so
  the bot always confirms them itself.
- On SMS, Twilio answers the single-word keywords itself by default
  (``SMS_KEYWORD_REPLIES=twilio``): the bot records the change and sends
  nothing, or the user would get two confirmations (or a 21610 error). On
  WhatsApp the bot always answers.
- While opted out nothing but these answers is sent.

Example::

    compliance = Compliance(renderer, keyword_replies="twilio", context={"business": biz})
    outcome = compliance.check(msg, opted_out=False)
    if outcome is not None:
        outcome.opted_out  # True after STOP
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from bot.channels import profile_of
from bot.messages import InboundMessage, OptOutType, Reply

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE"}
)
START_WORDS = frozenset({"START", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

# Surrounding punctuation and spaces are ignored: "Stop!", " stop. " count.
_STRIP = re.compile(r"^[\W_]+|[\W_]+$", re.UNICODE)

# Natural-language revocation of consent (US FCC order 24-24). Deliberately
# narrow: "stop booking" or "cancel my appointment" are flow words, not this.
_REVOCATION = re.compile(
    r"""(?ix)
    \b(?:stop|quit|cease|no\s+more)\s+(?:texting|messaging|sending|contacting|txting|msging)\b
    | \b(?:don'?t|do\s+not|never)\s+(?:text|message|txt|msg|contact)\s+me\b
    | \bremove\s+me\s+from\b
    | \b(?:unsubscribe|opt\s*-?\s*out)\s+(?:me|please|pls)\b
    | \bplease\s+(?:unsubscribe|opt\s*-?\s*out)\b
    | \btake\s+me\s+off\b
    """
)


class ReplyRenderer(Protocol):
    """What compliance needs from the template layer."""

    def render(self, name: str, channel: str, /, **context: Any) -> str: ...


Action = Literal["opt_out", "opt_in", "help"]

_ACTIONS: dict[OptOutType, Action] = {
    OptOutType.STOP: "opt_out",
    OptOutType.START: "opt_in",
    OptOutType.HELP: "help",
}


@dataclass(frozen=True, slots=True)
class ComplianceOutcome:
    """A keyword was recognised: what to record and what (if anything) to say."""

    action: Action
    intent: str
    replies: tuple[Reply, ...]
    # True/False: the new opt-out status to store; None: unchanged.
    opted_out: bool | None


def keyword_type(body: str, *, opted_out: bool) -> OptOutType | None:
    """Which compliance keyword ``body`` is, for a user who is (or is not) opted out.

    One rule for the bot and for the local Twilio's keyword filter: "YES" is
    an opt-in only while opted out; otherwise it answers a question.

    >>> keyword_type("Stop!", opted_out=False), keyword_type("yes", opted_out=False)
    (<OptOutType.STOP: 'STOP'>, None)
    """
    word = keyword_of(body)
    if word in STOP_WORDS:
        return OptOutType.STOP
    if word in START_WORDS or (word == "YES" and opted_out):
        return OptOutType.START
    if word in HELP_WORDS:
        return OptOutType.HELP
    return None


def keyword_of(body: str) -> str | None:
    """The single-word keyword of ``body``, upper-cased, or None.

    >>> keyword_of("  Stop! ")
    'STOP'
    >>> keyword_of("cancel my appointment") is None
    True
    """
    word = _STRIP.sub("", body.strip())
    if not word or any(ch.isspace() for ch in word):
        return None
    return word.upper()


def is_revocation(body: str) -> bool:
    """Whether ``body`` asks, in words, to stop receiving messages."""
    return bool(_REVOCATION.search(body))


class Compliance:
    """Recognises compliance keywords and builds their answers."""

    def __init__(
        self,
        renderer: ReplyRenderer,
        *,
        keyword_replies: Literal["twilio", "bot"] = "twilio",
        context: Mapping[str, Any] | None = None,
    ) -> None:
        self._renderer = renderer
        self._keyword_replies = keyword_replies
        self._context = dict(context or {})

    def check(self, msg: InboundMessage, *, opted_out: bool) -> ComplianceOutcome | None:
        """Classify ``msg``; None means "not a compliance message"."""
        action = self._action(msg, opted_out=opted_out)
        if action is None:
            return None
        # Twilio confirms single-word keywords on SMS itself; a natural-language
        # revocation it never sees as a keyword, so the bot must confirm that.
        twilio_answers = (
            profile_of(msg.channel).carrier_answers_keywords
            and self._keyword_replies == "twilio"
            and (keyword_of(msg.body) is not None or msg.opt_out_type is not None)
        )
        replies: tuple[Reply, ...] = ()
        if not twilio_answers:
            text = self._renderer.render(
                f"compliance_{action}", msg.channel.value, **self._context
            )
            replies = (Reply(text=text, compliance=True),)
        intent = {"opt_out": "opt_out", "opt_in": "opt_in", "help": "help"}[action]
        new_status = {"opt_out": True, "opt_in": False, "help": None}[action]
        return ComplianceOutcome(action, intent, replies, new_status)

    def _action(self, msg: InboundMessage, *, opted_out: bool) -> Action | None:
        if msg.opt_out_type is not None:
            return _ACTIONS[msg.opt_out_type]
        if msg.button_payload is not None:
            # A pressed button ("Cancel") is an answer the user chose, not a typed keyword.
            return None
        keyword = keyword_type(msg.body, opted_out=opted_out)
        if keyword is not None:
            return _ACTIONS[keyword]
        if msg.body and is_revocation(msg.body):
            return "opt_out"
        return None

"""What the user saw after each turn: the bot's messages as delivered, with their options.

The conversation view's turn log holds what the bot *decided*; the phone
shows what Twilio *delivered*: numbered lines on SMS, quick-reply or list
buttons on WhatsApp (or numbered lines when they did not fit), a content
template's rendered text. :func:`delivered_per_turn` reads the simulator's
thread and files each bot message under the user's message it answered (the
latest one before it), so the view lists the options exactly as seen.

Example::

    seen = delivered_per_turn(sim.conversation(Channel.SMS, user="+14155550100"), sim.templates)
    seen["SM..."][0].options      # ('1. Morning', '2. Afternoon')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from devtools.simulator import ContentTemplate, MessageOrigin, SimMessage

#: A numbered option line as the bot writes it (``bot.sms.render.numbered_options``).
_NUMBERED = re.compile(r"^\s*\d+\.\s+\S")
OptionStyle = Literal["numbered", "buttons", "list"]


@dataclass(frozen=True, slots=True)
class SeenMessage:
    """One message of the bot's as the user's phone showed it."""

    sid: str
    body: str
    template: str | None
    #: ``numbered``: lines of the text ("1. Yes"); ``buttons``: quick replies; ``list``: a list picker.
    style: OptionStyle | None
    options: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"sid": self.sid, "body": self.body, "template": self.template, "style": self.style,
                "options": list(self.options)}


def delivered_per_turn(
    messages: Iterable[SimMessage], templates: Mapping[str, ContentTemplate]
) -> dict[str, list[SeenMessage]]:
    """The bot's messages filed by the inbound MessageSid they followed (the thread's order)."""
    seen: dict[str, list[SeenMessage]] = {}
    turn: str | None = None
    for message in messages:
        if message.origin is MessageOrigin.USER:
            turn = message.sid
        elif message.origin is MessageOrigin.BOT and turn is not None:
            seen.setdefault(turn, []).append(seen_message(message, templates))
    return seen


def seen_message(message: SimMessage, templates: Mapping[str, ContentTemplate]) -> SeenMessage:
    """One delivered message with its options, as the user saw them."""
    template = templates.get(message.content_sid) if message.content_sid else None
    body = message.body or ""
    style: OptionStyle | None = None
    options: tuple[str, ...] = ()
    if message.buttons:
        style = "list" if template is not None and template.content_type == "twilio/list-picker" else "buttons"
        options = tuple(button.title for button in message.buttons)
    else:
        lines = tuple(line.strip() for line in body.splitlines() if _NUMBERED.match(line))
        if lines:
            style, options = "numbered", lines
    return SeenMessage(sid=message.sid, body=body, template=template.name if template else None,
                       style=style, options=options)

"""What flows are made of: the per-turn view they get, and the Flow protocol.

A flow is a small state machine over ``state.flow`` / ``state.step`` /
``state.slots``: :meth:`Flow.start` enters it, :meth:`Flow.answer` takes the
user's answer to the current step (or returns ``None``: "not an answer for
me", so the brain treats the message as a digression and comes back later
with :meth:`Flow.prompt`).

Example::

    class Survey:
        name = "survey"
        async def start(self, turn): turn.enter(self.name, "q1"); return [turn.say("survey_q1")]
        async def answer(self, turn): ...
        async def prompt(self, turn): return [turn.say("survey_q1")]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from bot.appointments import AppointmentBook
from bot.business import Business
from bot.engine import TurnContext
from bot.messages import Choice, Reply
from bot.nlu.understand import Understanding
from bot.templates import ReplyTemplates

#: The choices of a yes/no question, and what picking each means.
YES = Choice("yes", "Yes")
NO = Choice("no", "No")
YES_NO: Final[Mapping[str, str]] = {YES.payload: "affirm", NO.payload: "deny"}


@dataclass
class Turn:
    """One turn as a flow sees it: message, state, what NLU understood, helpers."""

    ctx: TurnContext
    understanding: Understanding
    # The payload of an offered choice the user picked (button, "1", a title).
    choice: str | None
    business: Business
    book: AppointmentBook
    templates: ReplyTemplates
    context: Mapping[str, Any]

    @property
    def yes_no(self) -> str | None:
        """``"affirm"`` or ``"deny"`` when this turn answers a yes/no question, else None.

        The Yes/No choice when one was picked (a button, "1"/"2"); otherwise
        what NLU made of the words ("yes", "nope").
        """
        if self.choice is not None:
            return YES_NO.get(self.choice)
        intent = self.understanding.intent
        return intent if intent in ("affirm", "deny") else None

    @property
    def now(self) -> datetime:
        return self.ctx.now

    @property
    def local_now(self) -> datetime:
        return self.ctx.now.astimezone(self.business.tz)

    @property
    def slots(self) -> dict[str, Any]:
        return self.ctx.state.slots

    def say(self, template: str, *, choices: Sequence[Choice] = (), **values: Any) -> Reply:
        """A reply from ``prompts/replies/<template>``, offering ``choices``."""
        text = self.templates.render(template, self.ctx.message.channel.value, **{**self.context, **values})
        if choices:
            # Remember what was offered: "1"/"2" or a button maps back to it.
            self.ctx.state.data["choices"] = [[c.payload, c.title] for c in choices]
        return Reply(text=text, choices=tuple(choices))

    def offer(self, intent: str, **slots: Any) -> None:
        """Remember a yes/no question asked outside a flow ("Want to book?") for one turn.

        A "yes" next starts ``intent`` with ``slots``; a "no" is acknowledged.
        Inside a flow nothing is remembered: the flow's own question follows.
        """
        if self.ctx.state.flow is None:
            self.ctx.state.data["offer"] = {"intent": intent, "slots": {k: v for k, v in slots.items() if v}}

    def enter(self, flow: str, step: str) -> None:
        self.ctx.state.flow, self.ctx.state.step = flow, step

    def goto(self, step: str) -> None:
        self.ctx.state.step = step

    def leave(self) -> None:
        """End the active flow and forget its slots."""
        self.ctx.state.flow = None
        self.ctx.state.step = None
        self.ctx.state.slots.clear()
        self.ctx.state.data.pop("choices", None)


class Flow(Protocol):
    """A multi-turn conversation the brain can enter, leave and resume."""

    name: str

    async def start(self, turn: Turn) -> list[Reply]: ...

    async def answer(self, turn: Turn) -> list[Reply] | None: ...

    async def prompt(self, turn: Turn) -> list[Reply]: ...

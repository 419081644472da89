"""What flows are made of: the per-turn view they get, and the Flow protocol.

A flow is a small state machine over ``state.flow`` / ``state.step`` /
``state.slots``: :meth:`Flow.start` enters it, :meth:`Flow.answer` takes the
user's answer to the current step (or returns ``None``: "not an answer for
me", so the brain treats the message as a digression and comes back later
with :meth:`Flow.prompt`). Every flow of this project is a table run by
:class:`bot.flows.table.TableFlow`; the protocol is what the brain needs.

Example::

    flow = TableFlow(BOOK)
    replies = await flow.start(turn)      # "Sure! Which service would you like? 1. Cleaning ..."
    replies = await flow.answer(turn)     # next message: "clning tmrw 2pm" -> "Book a cleaning ...?"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, Protocol

from bot.appointments import AppointmentBook
from bot.business import Business
from bot.engine import TurnContext
from bot.flows.options import Offered
from bot.languages.profile import profile_for
from bot.messages import Choice, Reply
from bot.nlu.slots import Slots
from bot.nlu.understand import Understanding
from bot.templates import ReplyTemplates

#: The choices of a yes/no question, and what picking each means.
YES = Choice("yes", "Yes")
NO = Choice("no", "No")
YES_NO: Final[Mapping[str, str]] = {YES.payload: "affirm", NO.payload: "deny"}
#: ``state.data`` key: where the last turn asked a clarification ("book:service"); it lives one turn.
ASKED: Final = "asked"


@dataclass
class Turn:
    """One turn as a flow sees it: message, state, what NLU understood, helpers."""

    ctx: TurnContext
    understanding: Understanding
    # The payload of an offered choice the user picked (button, "1", "the 2nd", "the 9am").
    choice: str | None
    business: Business
    book: AppointmentBook
    templates: ReplyTemplates
    context: Mapping[str, Any]
    # Several offered options fit the message ("the cleaning one" with two cleanings): ask which.
    among: tuple[Offered, ...] = ()
    # The options the replies of this turn offered (None: none offered this turn).
    offered: list[Offered] | None = None
    # Slots read again with the flow's context ("an hour later", a bare "10"): see TableFlow.
    reread: Slots | None = field(default=None)
    # Where the previous turn asked a clarification ("book:time"), if it did (``ASKED``).
    asked: str | None = None

    @property
    def where(self) -> str:
        """The flow and step the conversation is at: ``"book:time"``."""
        return f"{self.ctx.state.flow}:{self.ctx.state.step}"

    def asking(self) -> bool:
        """Note that this turn asks a clarification here; False when the last turn asked one here already.

        Ambiguity is asked about once: the same question twice in a row
        reads as a robot, so the caller takes another path instead.
        """
        if self.asked == self.where:
            return False
        self.ctx.state.data[ASKED] = self.where
        return True

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

    def say(
        self,
        template: str,
        *,
        choices: Sequence[Choice] = (),
        offered: Sequence[Offered] = (),
        **values: Any,
    ) -> Reply:
        """A reply from ``prompts/replies/<template>``, offering ``choices``.

        ``offered`` (the choices with what each stands for: a service, a
        start time) is remembered so the next message may pick by number,
        ordinal or content ("the 9am"); plain ``choices`` are remembered by
        payload and title.
        """
        text = self.templates.render(template, self.ctx.message.channel.value, **{**self.context, **values})
        if offered:
            choices = [o.choice for o in offered]
        titles = profile_for(self.business.language).titles
        if titles:
            # The bot's own choices (Yes/No) in the conversation's language.
            choices = [replace(c, title=titles.get(c.payload, c.title)) for c in choices]
        if choices:
            self.offered = list(offered) if offered else [Offered(c.payload, c.title) for c in choices]
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
        """End the active flow and forget its slots and offered options."""
        self.ctx.state.flow = None
        self.ctx.state.step = None
        self.ctx.state.slots.clear()
        self.ctx.state.data.pop("choices", None)
        self.offered = None


class Flow(Protocol):
    """A multi-turn conversation the brain can enter, leave and resume."""

    name: str

    async def start(self, turn: Turn) -> list[Reply]: ...

    async def answer(self, turn: Turn) -> list[Reply] | None: ...

    async def prompt(self, turn: Turn) -> list[Reply]: ...

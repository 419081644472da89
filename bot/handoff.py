"""Hand-off to a person: the flow table that starts it, the quiet spell, the staff notice.

While a person has the conversation the bot says nothing; it keeps the idle
clock (``HANDOFF_IDLE_MINUTES`` after the last message the bot returns by
itself), and a release word ("bot", "menu") gives the conversation back
at once. Staff are told through a :data:`StaffNotifier` (by SMS through the
outbox: :func:`outbox_staff_notifier`).

Example::

    desk = Handoff(settings, templates, business)
    flows = [TableFlow(desk.table), ...]          # the "human" intent starts it
    desk.status(ctx, "menu")                      # "released"
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Literal

from bot.business import Business
from bot.engine import TurnContext
from bot.flows.base import Turn
from bot.flows.table import FlowTable
from bot.messages import Channel, Reply
from bot.outbound.models import SendRequest
from bot.outbound.outbox import Outbox
from bot.settings import Settings
from bot.storage.base import ConversationKey
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.brain")

#: Tells staff a conversation was handed over: (conversation, notice text, inbound MessageSid).
StaffNotifier = Callable[[ConversationKey, str, str], Awaitable[None]]
HandoffStatus = Literal["none", "active", "released"]

# Texting one of these while a person has the conversation gives it back to the bot.
RELEASE_WORDS = frozenset({"bot", "menu", "back to bot", "talk to bot", "talk to the bot", "back to the bot"})
_RELEASE_STRIP = re.compile(r"^[\W_]+|[\W_]+$")


def release_word(text: str) -> bool:
    """Whether ``text`` ("Bot!", " menu ") asks to leave the hand-off.

    >>> release_word(" Bot! "), release_word("bot please book")
    (True, False)
    """
    return _RELEASE_STRIP.sub("", text.strip().lower()) in RELEASE_WORDS


def outbox_staff_notifier(settings: Settings, outbox: Outbox, business: Business) -> StaffNotifier:
    """A :data:`StaffNotifier` that texts ``STAFF_NUMBER`` (default: the business phone) by SMS.

    The notice goes through the outbox (retries, the send ledger); its
    idempotency key is the inbound MessageSid, so a retried turn never
    notifies twice. It is sent from ``TWILIO_PHONE_NUMBER`` when set, else
    from the number the user texted. Wire it where the outbox exists::

        brain.notify_staff = outbox_staff_notifier(settings, runtime.require_outbound().outbox,
                                                   brain.business)
    """
    staff = settings.staff_number or business.phone_e164

    async def notify(key: ConversationKey, notice: str, message_sid: str) -> None:
        sender = settings.twilio_phone_number or key.bot
        await outbox.submit(
            SendRequest(
                key=ConversationKey(Channel.SMS, sender, staff),
                body=notice,
                purpose="handoff",
                idempotency_key=f"handoff:{message_sid}",
            )
        )

    return notify


class Handoff:
    """The hand-off: its flow table (no slots, no confirmation) and the quiet spell."""

    def __init__(self, settings: Settings, templates: ReplyTemplates, context: dict[str, Any]) -> None:
        self.settings = settings
        self.templates = templates
        self.context = context
        self.notify_staff: StaffNotifier | None = None
        #: ``human``: the intent starts it at once (there is nothing to ask).
        self.table = FlowTable(name="human", slots=(), done=self.hand_over)

    @property
    def idle_seconds(self) -> float:
        return timedelta(minutes=self.settings.handoff_idle_minutes).total_seconds()

    def status(self, ctx: TurnContext, text: str) -> HandoffStatus:
        """``active`` while a person has the conversation; ``released`` when the user takes it back.

        It ends by itself ``HANDOFF_IDLE_MINUTES`` after the last message
        (``none`` then: the message is handled as usual), or when the user
        texts a release word ("bot", "menu").
        """
        until = ctx.state.data.get("handoff_until")
        if until is None:
            return "none"
        if ctx.now.timestamp() >= float(until):
            del ctx.state.data["handoff_until"]
            return "none"
        if release_word(text):
            del ctx.state.data["handoff_until"]
            return "released"
        return "active"

    def keep_quiet(self, ctx: TurnContext) -> None:
        """A person has the conversation: only the idle clock moves."""
        ctx.state.data["handoff_until"] = ctx.now.timestamp() + self.idle_seconds

    async def hand_over(self, turn: Turn) -> list[Reply]:
        """Tell staff (with the recent conversation) and the user; the bot goes quiet."""
        turn.leave()
        ctx = turn.ctx
        self.keep_quiet(ctx)
        # The engine records this message after the turn: add it, or staff miss the request.
        lines = [f"{h.role}: {h.text}" for h in ctx.state.history[-5:]]
        recent = " | ".join([*lines, f"user: {ctx.message.body[:160]}"])
        notice = self.templates.render(
            "handoff_staff",
            "sms",
            user=ctx.message.user,
            channel=ctx.message.channel.value,
            recent=recent,
            **self.context,
        )
        if self.notify_staff is not None:
            await self.notify_staff(ctx.state.key, notice, ctx.message.event_id)
        else:
            log.warning("hand-off requested but no staff notifier is configured")
        return [turn.say("handoff", minutes=self.settings.handoff_idle_minutes)]

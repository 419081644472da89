"""Hand-off to a person, in a way people can trust: the flow table that starts
it, the acknowledgment after a quiet spell, the return, the staff notices.

While staff have a conversation (``state.data["handoff_until"]``):

- every message is passed on to staff, so "our team has your message" is true;
- the first message after the hand-off, and the first after a quiet spell of
  ``HANDOFF_QUIET_MINUTES`` (default 10), get one short acknowledgment;
  outside opening hours it says when someone will answer ("we're open again
  Monday 8am"); the messages in between get no reply;
- ``HANDOFF_IDLE_MINUTES`` after the last message the bot comes back by
  itself, with a line saying so: a timed job sends it then
  (:mod:`bot.handoff_return`, scheduled through :attr:`Handoff.schedule_return`
  each time the deadline moves); a message that comes first is answered as
  usual, after that line;
- a release word ("bot", "menu") gives the conversation back at once.

Staff are told through a :data:`StaffNotifier` (by SMS through the outbox:
:func:`outbox_staff_notifier`). An emergency or a complaint (bot/safety.py)
starts a hand-off too, with a notice of its own (:meth:`Handoff.start`).

Example::

    desk = Handoff(settings, templates, {"business": business})
    flows = [TableFlow(desk.table), ...]          # the "human" intent starts it
    desk.status(ctx, "menu")                      # "released"
    await desk.waiting(turn)                      # [] or [the acknowledgment]
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from bot.business import Business
from bot.channels import LateDelivery, profile_of
from bot.engine import TurnContext
from bot.flows.base import Turn
from bot.flows.table import FlowTable
from bot.mail.wiring import StaffMailParts
from bot.messages import Channel, Reply
from bot.opening import opening_status
from bot.outbound.models import SendRequest
from bot.outbound.outbox import Outbox
from bot.settings import Settings
from bot.storage.base import ConversationKey
from bot.templates import ReplyTemplates

log = logging.getLogger("bot.brain")

#: Tells staff a conversation was handed over: (conversation, notice text, inbound MessageSid).
StaffNotifier = Callable[[ConversationKey, str, str], Awaitable[None]]
#: Runs the return check for a conversation at a time (epoch seconds): the outbox's timed job.
ReturnScheduler = Callable[[ConversationKey, float], Awaitable[None]]
HandoffStatus = Literal["none", "active", "released", "returned"]

# Texting one of these while a person has the conversation gives it back to the bot.
RELEASE_WORDS = frozenset({"bot", "menu", "back to bot", "talk to bot", "talk to the bot", "back to the bot"})
_RELEASE_STRIP = re.compile(r"^[\W_]+|[\W_]+$")
#: How many history lines a staff notice quotes.
NOTICE_LINES = 5

_UNTIL = "handoff_until"
_LAST = "handoff_last"  # when the user last wrote during the hand-off
_ACKED = "handoff_acked"  # whether this hand-off was acknowledged since its last quiet spell


def staff_until(data: Mapping[str, Any], now: datetime) -> datetime | None:
    """Until when staff have a conversation (its state's ``data``); None when the bot has it.

    The hand-off also ends at the next message after this time (:meth:`Handoff.status`).

    >>> staff_until({"handoff_until": 1772550000.0}, datetime(2026, 3, 3, tzinfo=UTC))
    datetime.datetime(2026, 3, 3, 15, 0, tzinfo=datetime.timezone.utc)
    >>> staff_until({}, datetime(2026, 3, 3, tzinfo=UTC)) is None
    True
    """
    until = data.get(_UNTIL)
    if until is None or now.timestamp() >= float(until):
        return None
    return datetime.fromtimestamp(float(until), UTC)


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
    from the number the user texted. The composition root builds it where the outbox exists::

        notify = outbox_staff_notifier(settings, outbound.outbox, business)
        brain = build_handler(settings, ..., business=business, notify_staff=notify)
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
    """The hand-off: its flow table (no slots, no confirmation), the acknowledgments and the return."""

    def __init__(
        self,
        settings: Settings,
        templates: ReplyTemplates,
        context: dict[str, Any],
        *,
        notify_staff: StaffNotifier | None = None,
        staff_mail: StaffMailParts | None = None,
        schedule_return: ReturnScheduler | None = None,
    ) -> None:
        self.settings = settings
        self.templates = templates
        self.context = context
        self.notify_staff = notify_staff
        #: Staff email (bot/mail), when configured: each hand-off is emailed with the conversation.
        self.staff_mail = staff_mail
        #: ``human``: the intent starts it at once (there is nothing to ask).
        self.table = FlowTable(name="human", slots=(), done=self.hand_over)
        #: Schedules the return at the idle deadline (the outbox's, passed in by bot.runtime); None: only
        #: the next message brings the bot back.
        self.schedule_return = schedule_return

    @property
    def idle_seconds(self) -> float:
        return timedelta(minutes=self.settings.handoff_idle_minutes).total_seconds()

    @property
    def quiet_seconds(self) -> float:
        return timedelta(minutes=self.settings.handoff_quiet_minutes).total_seconds()

    def status(self, ctx: TurnContext, text: str) -> HandoffStatus:
        """``active`` while a person has the conversation; ``released`` when the user takes it back;
        ``returned`` when it ended by itself just now; ``none`` otherwise.

        It ends by itself ``HANDOFF_IDLE_MINUTES`` after the last message
        (``returned``: the message is handled as usual, after a line saying
        the bot is back), or when the user texts a release word ("bot", "menu").
        """
        data = ctx.state.data
        if data.get(_UNTIL) is None:
            return "none"
        if self.idle(data, ctx.now):
            self.end(data)
            return "returned"
        if release_word(text):
            self.end(data)
            return "released"
        return "active"

    @staticmethod
    def idle(data: dict[str, Any], now: datetime) -> bool:
        """Whether the hand-off in ``data`` (a conversation's ``state.data``) is past its idle deadline."""
        until = data.get(_UNTIL)
        return until is not None and now.timestamp() >= float(until)

    async def email(self, ctx: TurnContext, *, reason: str) -> None:
        """Email staff about this hand-off (``reason``: asked, urgent, complaint, unanswered_call)."""
        if self.staff_mail is not None:
            # The engine records this message after the turn: add it, or staff miss the request.
            turns = (*((h.role, h.text) for h in ctx.state.history[-7:]), ("user", ctx.message.body))
            await self.staff_mail.handoff(ctx.state.key, reason=reason, message_sid=ctx.message.event_id,
                                          profile_name=ctx.message.profile_name or "", at=ctx.now, turns=turns)

    async def hand_over(self, turn: Turn) -> list[Reply]:
        """``human``: tell staff (with the recent conversation) and the user when someone will answer."""
        await self.start(turn, notice="handoff_staff")
        opening = opening_status(self.context["business"], turn.now)
        return [turn.say("handoff", minutes=self.settings.handoff_idle_minutes, opening=opening)]

    async def start(self, turn: Turn, *, notice: str, reason: str = "asked", **values: object) -> None:
        """Hand the conversation to staff: notify them (template ``notice``; by email too, with ``reason``,
        when staff email is configured) and start the idle clock."""
        ctx = turn.ctx
        turn.leave()
        data = ctx.state.data
        data[_UNTIL] = ctx.now.timestamp() + self.idle_seconds
        data[_LAST] = ctx.now.timestamp()
        data[_ACKED] = False
        await self._schedule(ctx)
        # The engine records this message after the turn: add it, or staff miss the request.
        lines = [f"{h.role}: {' '.join(h.text.split())}" for h in ctx.state.history[-NOTICE_LINES:]]
        recent = " | ".join([*lines, f"user: {' '.join(ctx.message.body[:160].split())}"])
        await self._tell_staff(ctx, notice, recent=recent, **values)
        await self.email(ctx, reason=reason)

    async def waiting(self, turn: Turn) -> list[Reply]:
        """A message while staff have the conversation: pass it on; acknowledge after a quiet spell."""
        ctx = turn.ctx
        data = ctx.state.data
        now = ctx.now.timestamp()
        quiet = now - float(data.get(_LAST, 0.0)) >= self.quiet_seconds
        first = not data.get(_ACKED, False)
        data[_LAST] = now
        data[_UNTIL] = now + self.idle_seconds
        await self._schedule(ctx)
        await self._tell_staff(ctx, "handoff_forward", text=_quoted(ctx))
        if not (first or quiet):
            return []
        data[_ACKED] = True
        return [turn.say("handoff_ack", opening=opening_status(self.context["business"], ctx.now))]

    def returned_line(self, channel: str, templates: ReplyTemplates | None = None) -> str:
        """The line that says the bot is back after staff went quiet (in ``templates``' language)."""
        return (templates or self.templates).render("handoff_returned", channel, **self.context)

    @staticmethod
    def end(data: dict[str, Any]) -> None:
        """End the hand-off kept in ``data`` (a conversation's ``state.data``)."""
        for key in (_UNTIL, _LAST, _ACKED):
            data.pop(key, None)

    async def _schedule(self, ctx: TurnContext) -> None:
        # Calls are not texted afterwards: a voice hand-off ends with the call.
        key = ctx.state.key
        if self.schedule_return is not None and profile_of(key.channel).late_delivery is LateDelivery.REST:
            await self.schedule_return(key, float(ctx.state.data[_UNTIL]))

    async def _tell_staff(self, ctx: TurnContext, template: str, **values: object) -> None:
        text = self.templates.render(
            template,
            "sms",
            user=ctx.message.user,
            channel=ctx.message.channel.value,
            **self.context,
            **values,
        )
        if self.notify_staff is None:
            log.warning("hand-off: no staff notifier is configured", extra={"fields": {"template": template}})
            return
        await self.notify_staff(ctx.state.key, text, ctx.message.event_id)


def _quoted(ctx: TurnContext) -> str:
    msg = ctx.message
    if msg.media:
        return f"[{len(msg.media)} attachment(s)] {msg.body[:160]}".strip()
    return msg.body[:300]

"""The bot comes back by itself when a hand-off goes idle.

A hand-off (:mod:`bot.handoff`) lasts until ``HANDOFF_IDLE_MINUTES`` after
the user's last message. Each time that deadline is set, a timed job is
scheduled for it (:meth:`Outbox.submit_handoff_return`); when it runs,
:meth:`HandoffReturns.run` takes the conversation's turn (like a message
would, so it never races one), and when the hand-off is still idle past its
deadline it ends it and sends one line saying the bot is back
(``prompts/replies/handoff_returned.j2``), recorded in the history.

The line is a message the bot starts, so it obeys the same rules as a
reminder: nothing to someone who opted out (the hand-off just ends), a
recipient in quiet hours keeps staff until the morning (the job is moved to
the release time, and a message meanwhile is answered with the line first),
and on WhatsApp only inside the 24 h window (the sender refuses otherwise:
no template is spent on it). A message after the deadline that beats the job
gets the line in its answer instead (:meth:`bot.handoff.Handoff.status`); the
job then finds nothing to do. A job that runs twice sends nothing twice:
its turn id is seen by the store, and its send has an idempotency key.

Example::

    returns = HandoffReturns(store=store, clock=clock, handoff=brain.handoff, outbox=outbox, quiet=gate)
    await returns.run(key, due=until)     # "returned", "held", "opted_out" or "active"
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING, Literal

from bot.handoff import Handoff
from bot.observability import mask_phone
from bot.outbound.models import SendRequest
from bot.storage.base import ConversationKey, HistoryEntry, TurnStatus

if TYPE_CHECKING:
    from bot.clock import Clock
    from bot.engine import Engine
    from bot.outbound.held import QuietGate
    from bot.outbound.outbox import Outbox

log = logging.getLogger("bot.brain")

ReturnOutcome = Literal["returned", "held", "opted_out", "active", "duplicate"]


class HandoffReturns:
    """Runs the timed hand-off returns; see the module docstring."""

    def __init__(self, *, engine: Engine, clock: Clock, handoff: Handoff, outbox: Outbox,
                 quiet: QuietGate | None) -> None:
        self.engine = engine
        self.clock = clock
        self.handoff = handoff
        self.outbox = outbox
        self.quiet = quiet

    async def run(self, key: ConversationKey, due: float) -> ReturnOutcome:
        """End ``key``'s hand-off if it is idle past its deadline and say so; what happened."""
        store = self.engine.store
        event = f"handoff-return:{int(due)}"
        token = secrets.token_hex(8)
        start = await self.engine.acquire(key, event, token)
        if start.status is TurnStatus.DUPLICATE:
            return "duplicate"
        try:
            state = start.state
            now = self.clock.now()
            if state is None or not self.handoff.idle(state.data, now):
                await store.abort_turn(key, event, token)
                return "active"  # the user wrote since, or it ended already
            line = self.handoff.returned_line(key.channel.value)
            request = SendRequest(key=key, body=line, purpose="handoff_return",
                                  idempotency_key=f"handoff-return:{key.channel.value}:{key.bot}:{key.user}:{int(due)}",
                                  last_inbound_at=state.last_inbound_at)
            hold = None if start.opted_out or self.quiet is None else await self.quiet.plan(request)
            if hold is not None:
                # Quiet hours: staff keep it until the release time; the line goes then.
                await store.abort_turn(key, event, token)
                await self.outbox.submit_handoff_return(key, hold.release_at.timestamp())
                return "held"
            self.handoff.end(state.data)
            if not start.opted_out:
                state.remember(HistoryEntry(now.timestamp(), "bot", line[:160]), self.engine.settings.history_limit)
            settings = self.engine.settings
            committed = await store.commit_turn(
                key, event, token, state=state, answer="", state_ttl=settings.conversation_ttl_seconds,
                answer_ttl=settings.dedupe_answer_ttl_seconds, seen_ttl=settings.dedupe_ttl_seconds,
            )
        except BaseException:
            await store.abort_turn(key, event, token)
            raise
        if not committed:
            return "active"  # the lease lapsed: the job runs again
        if start.opted_out:
            return "opted_out"
        # After the commit: a crash now loses the line, never sends it for a hand-off still on.
        await self.outbox.submit(request)
        log.info("hand-off returned to the bot", extra={"fields": {"user": mask_phone(key.user)}})
        return "returned"

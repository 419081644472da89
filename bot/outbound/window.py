"""WhatsApp's 24-hour customer-service window.

Free-form WhatsApp messages may go out only within 24 h of the user's last
message (Twilio answers 63016 otherwise); after that only approved
templates. The engine stamps ``ConversationState.last_inbound_at`` on every
turn, so the window is read from the conversation state: no second record
to keep in step. State that expired (``CONVERSATION_TTL_SECONDS``) counts as
a closed window, and a small margin keeps us off the edge, where the clocks
of Meta, Twilio and this server disagree by seconds.

Example::

    window = WhatsAppWindow(store, clock)
    await window.is_open(key)                        # from the stored state
    await window.is_open(key, last_inbound_at=ts)    # a turn in progress knows better
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from bot.clock import Clock
from bot.storage.base import ConversationKey, ConversationStore

WINDOW: Final = timedelta(hours=24)
# Treat the last few minutes as closed: a template then is merely a little
# early, while a free-form message sent a second too late fails (63016).
DEFAULT_MARGIN: Final = timedelta(minutes=5)


class WhatsAppWindow:
    """Answers "may a free-form WhatsApp message go to this user now?"."""

    def __init__(self, store: ConversationStore, clock: Clock, *, margin: timedelta = DEFAULT_MARGIN) -> None:
        self.store = store
        self.clock = clock
        self.margin = margin

    async def last_inbound(self, key: ConversationKey) -> datetime | None:
        """When the user last wrote, per the conversation state (None: unknown or expired)."""
        state = await self.store.load(key)
        if state is None or state.last_inbound_at is None:
            return None
        return datetime.fromtimestamp(state.last_inbound_at, tz=self.clock.now().tzinfo)

    async def is_open(self, key: ConversationKey, *, last_inbound_at: float | None = None) -> bool:
        """True when the window is open; ``last_inbound_at`` (epoch) may only make it newer."""
        limit = (WINDOW - self.margin).total_seconds()
        if last_inbound_at is not None and self.clock.timestamp() - last_inbound_at < limit:
            # Open on the caller's word (a reply inside the turn knows when the
            # user wrote); the stored time could only be newer. No read needed.
            return True
        stored = await self.last_inbound(key)
        latest = stored.timestamp() if stored is not None else None
        if last_inbound_at is not None and (latest is None or last_inbound_at > latest):
            latest = last_inbound_at
        if latest is None:
            return False
        return self.clock.timestamp() - latest < limit

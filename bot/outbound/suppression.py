"""Who must not get messages: opted-out users and numbers that cannot receive.

Opt-outs are the engine's own flag (``optout:{...}``, set by STOP and by
Twilio's 21610), so the TwiML path, the sender, reminders and broadcasts
all obey one record. Unreachable numbers (Twilio 21211 invalid, 21614 not
mobile, 30006 landline) are kept per channel and number under
``unreachable:{<channel>:<number>}``: they hold whichever bot number sends.
Neither expires; a number that becomes reachable again is cleared with
:meth:`Suppressions.clear_unreachable`.

Example::

    suppressions = Suppressions(stores.conversations, stores.ledger, metrics)
    await suppressions.reason(key)          # None, "opted_out" or "unreachable"
    await suppressions.record_error(key, 21211)  # marks the number
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final, Literal

from bot.observability import Metrics, mask_phone
from bot.outbound.errors import OPTED_OUT_CODE, UNREACHABLE_CODES
from bot.storage.base import ConversationKey, ConversationStore
from bot.storage.ledger import LedgerStore

log = logging.getLogger("bot.outbound")

Reason = Literal["opted_out", "unreachable"]
#: Hears of an opt-out Twilio reported (21610): (conversation, MessageSid or "").
OptOutReport = Callable[[ConversationKey, str], Awaitable[None]]
OPTED_OUT: Final = "opted_out"
UNREACHABLE: Final = "unreachable"


def unreachable_key(key: ConversationKey) -> str:
    """``unreachable:{sms:+14155550123}``: per channel and number, not per bot number."""
    return "unreachable:{" + f"{key.channel.value}:{key.user}" + "}"


class Suppressions:
    """Reads and writes the two do-not-send records."""

    def __init__(
        self, store: ConversationStore, ledger: LedgerStore, metrics: Metrics, *, on_opt_out: OptOutReport | None = None
    ) -> None:
        self.store = store  # opt-outs
        self.ledger = ledger  # unreachable marks
        self.metrics = metrics
        # Called once per opt-out learnt from 21610 with (conversation, MessageSid): the consent
        # ledger records it and staff hear of it (bot/compliance; the composition root passes it).
        self.on_opt_out = on_opt_out

    async def reason(self, key: ConversationKey, *, compliance: bool = False) -> Reason | None:
        """Why nothing may be sent to ``key`` now, or None.

        ``compliance`` answers (STOP/START confirmations) may go to an
        opted-out user; nothing goes to an unreachable number.
        """
        # Both records at once: they live on two stores (and two cluster slots).
        opted_out, unreachable = await asyncio.gather(
            self.store.is_opted_out(key), self.ledger.get(unreachable_key(key)))
        if not compliance and opted_out:
            return "opted_out"
        if unreachable is not None:
            return "unreachable"
        return None

    async def unreachable_code(self, key: ConversationKey) -> int | None:
        """The Twilio code that marked the number, if it is marked."""
        raw = await self.ledger.get(unreachable_key(key))
        if raw is None:
            return None
        code = json.loads(raw).get("code")
        return int(code) if code is not None else None

    async def record_error(
        self, key: ConversationKey, code: int | None, *, source: str = "send", message_sid: str = ""
    ) -> str | None:
        """Apply what a Twilio error code says about the recipient; returns what changed.

        21610 opts the user out (every later path then stays silent);
        21211, 21614 and 30006 mark the number unreachable.
        """
        if code == OPTED_OUT_CODE:
            if not await self.store.is_opted_out(key):
                await self.store.set_opted_out(key, True)
                self.metrics.opt_outs.labels(key.channel.value, f"twilio_{code}").inc()
                log.info("recipient opted out (Twilio 21610)",
                         extra={"fields": {"user": mask_phone(key.user), "source": source}})
                if self.on_opt_out is not None:
                    await self.on_opt_out(key, message_sid)
            return OPTED_OUT
        if code in UNREACHABLE_CODES:
            record = json.dumps({"code": code, "at": int(time.time())})
            if await self.ledger.set(unreachable_key(key), record, only_if_absent=True):
                log.info("number marked unreachable",
                         extra={"fields": {"user": mask_phone(key.user), "code": code, "source": source}})
            return UNREACHABLE
        return None

    async def clear_unreachable(self, key: ConversationKey) -> None:
        """Allow sends to a number marked unreachable again (it was ported, fixed ...)."""
        await self.ledger.delete(unreachable_key(key))

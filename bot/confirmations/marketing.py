"""Marketing consent: the consent-ledger source recall invitations need (``source: marketing``).

Reminders and follow-ups about a patient's own visits need no more than the
patient's number; an invitation to book again is marketing, so it goes only
to patients with a recorded ``opt_in`` whose source is ``marketing`` on that
channel, not followed by an opt-out (STOP or any revocation ends it too).
Staff record it with ``bot appointments recall-consent NUMBER`` (a signed
form, a box ticked at the front desk).

Example::

    await record_marketing_consent(ledger, hasher, key, at=now, note="front desk form")
    await has_marketing_consent(ledger, hasher, key)     # True
"""

from __future__ import annotations

from datetime import datetime

from bot.compliance.ledger import AddressHasher, ConsentEvent, ConsentLedger
from bot.storage.base import ConversationKey


async def record_marketing_consent(
    ledger: ConsentLedger, hasher: AddressHasher, key: ConversationKey, *, at: datetime, note: str = ""
) -> bool:
    """Append the marketing opt-in of ``key``'s number on its channel; False when already recorded."""
    event = ConsentEvent.create(action="opt_in", channel=key.channel, bot=key.bot, user=key.user, source="marketing",
                                at=at, hasher=hasher, words=note)
    return await ledger.append(event)


async def has_marketing_consent(ledger: ConsentLedger | None, hasher: AddressHasher, key: ConversationKey) -> bool:
    """A marketing opt-in on ``key``'s channel not followed by an opt-out (none without a ledger)."""
    if ledger is None:
        return False
    consented = False
    for event in await ledger.history(hasher.hash(key.user)):
        if event.channel is not key.channel:
            continue
        if event.action == "opt_out":
            consented = False
        elif event.source == "marketing":
            consented = True
    return consented

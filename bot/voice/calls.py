"""The record of each call: who called, how it ended, how long it took.

Twilio posts call status callbacks (``completed``, ``busy``, ``no-answer``,
``failed``, ``canceled``, with ``CallDuration`` in seconds) to
``/twilio/voice/status``. :class:`CallLog` keeps one JSON record per
``CallSid`` (``call:{CallSid}``, kept 30 days) and reports whether a final
status is new, so the metrics count each call once even when Twilio
retries the callback.

Example::

    log = CallLog(stores.ledger)
    await log.started("CA...", caller="+14155550123", bot="+15005550006", at=now)
    first = await log.finished("CA...", status="completed", duration=42, at=now)   # True
    (await log.get("CA...")).duration   # 42
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Final

from bot.storage.backend import Records

#: Statuses that end a call (Twilio's call status callback values).
FINAL_STATUSES: Final = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
RECORD_TTL: Final = 30 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call as the bot saw it. Times are epoch seconds."""

    sid: str
    caller: str = ""
    bot: str = ""
    status: str = "in-progress"
    duration: int | None = None
    started_at: float | None = None
    ended_at: float | None = None


class CallLog:
    """Per-call records (beside the delivery records, in the ledger store), idempotent per (call, final status)."""

    def __init__(self, store: Records) -> None:
        self.store = store

    async def get(self, sid: str) -> CallRecord | None:
        raw = await self.store.get(_key(sid))
        return None if raw is None else CallRecord(**json.loads(raw))

    async def started(self, sid: str, *, caller: str, bot: str, at: datetime) -> CallRecord:
        """The call reached the voice webhook (first request); a retry keeps the first record."""
        record = CallRecord(sid=sid, caller=caller, bot=bot, started_at=at.timestamp())
        # One round trip: only the first request of the call writes.
        await self.store.set(_key(sid), json.dumps(asdict(record)), ttl=RECORD_TTL, only_if_absent=True)
        return record

    async def finished(
        self, sid: str, *, status: str, duration: int | None, at: datetime, caller: str = "", bot: str = ""
    ) -> bool:
        """Record a final status; True the first time this call gets it (count it then)."""
        first: bool = await self.store.set(f"{_key(sid)}:final:{status}", "1", ttl=RECORD_TTL,
                                           only_if_absent=True)
        record = await self.get(sid) or CallRecord(sid=sid, caller=caller, bot=bot)
        await self._save(replace(
            record, status=status, duration=duration if duration is not None else record.duration,
            ended_at=at.timestamp(), caller=record.caller or caller, bot=record.bot or bot,
        ))
        return first

    async def _save(self, record: CallRecord) -> None:
        await self.store.set(_key(record.sid), json.dumps(asdict(record)), ttl=RECORD_TTL)


def _key(sid: str) -> str:
    return f"call:{{{sid}}}"

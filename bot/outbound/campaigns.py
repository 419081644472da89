"""Campaign bookkeeping: one outcome per recipient, counted exactly once.

Every recipient of a broadcast ends in one outcome: ``sent``,
``skipped:<reason>`` (opted_out, unreachable, outside_window) or
``failed:<code>`` (Twilio's error code, ``network`` or ``template``). The
ledger store's :meth:`~bot.storage.ledger.LedgerStore.tally` records the first
outcome per recipient atomically, so re-running a campaign, a job retried
after a crash or a recipient listed twice never counts twice. Delivery
statuses from callbacks are tallied apart (``delivery``), once per message.

Example::

    campaigns = Campaigns(store)
    await campaigns.start("spring", template="welcome_back", total=1000, rate=1.0)
    await campaigns.record("spring", "whatsapp:+14155550123", "sent")
    (await campaigns.summary("spring")).sent  # 1
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Final

from bot.storage.jobs import JobStore
from bot.storage.ledger import LedgerStore

#: Campaign records outlive the campaign for reporting.
CAMPAIGN_TTL: Final = 30 * 24 * 3600.0


def campaign_key(campaign: str, part: str = "outcomes") -> str:
    """Keys of one campaign share a hash tag: ``campaign:{spring}:outcomes``."""
    return "campaign:{" + campaign + "}:" + part


@dataclass(frozen=True, slots=True)
class CampaignSummary:
    """Where a campaign stands: totals by outcome, and delivery as reported by Twilio."""

    campaign: str
    template: str | None
    total: int
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    delivery: dict[str, int] = field(default_factory=dict)

    @property
    def done(self) -> int:
        return self.sent + sum(self.skipped.values()) + sum(self.failed.values())

    @property
    def pending(self) -> int:
        return max(0, self.total - self.done)

    def lines(self) -> list[str]:
        """A human summary, one fact per line (the CLI prints it)."""
        out = [f"campaign {self.campaign}" + (f" (template {self.template})" if self.template else ""),
               f"  recipients: {self.total}", f"  sent: {self.sent}"]
        for title, counts in (("skipped", self.skipped), ("failed", self.failed), ("delivery", self.delivery)):
            if counts:
                detail = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
                out.append(f"  {title}: {sum(counts.values())} ({detail})")
        if self.pending:
            out.append(f"  pending: {self.pending}")
        return out


class Campaigns:
    """Campaign metadata and outcome tallies on the store's primitives."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store

    async def start(self, campaign: str, *, template: str, total: int, rate: float) -> None:
        """Record (or refresh) what the campaign is; ``total`` counts distinct recipients."""
        meta = {"template": template, "total": total, "rate": rate, "updated_at": int(time.time())}
        await self.store.set(campaign_key(campaign, "meta"), json.dumps(meta), ttl=CAMPAIGN_TTL)

    async def record(self, campaign: str, recipient: str, outcome: str) -> bool:
        """Count ``recipient``'s outcome unless it has one already; True when counted."""
        return await self.store.tally(campaign_key(campaign), recipient, outcome, ttl=CAMPAIGN_TTL)

    async def record_delivery(self, campaign: str, sid: str, status: str) -> bool:
        """Count a message's final delivery status (first report wins)."""
        return await self.store.tally(campaign_key(campaign, "delivery"), sid, status, ttl=CAMPAIGN_TTL)

    async def summary(self, campaign: str) -> CampaignSummary:
        raw = await self.store.get(campaign_key(campaign, "meta"))
        meta = json.loads(raw) if raw else {}
        counts = await self.store.tallies(campaign_key(campaign))
        skipped = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith("skipped:")}
        failed = {k.split(":", 1)[1]: n for k, n in counts.items() if k.startswith("failed:")}
        return CampaignSummary(
            campaign=campaign, template=meta.get("template"), total=int(meta.get("total", 0)),
            sent=counts.get("sent", 0), skipped=skipped, failed=failed,
            delivery=await self.store.tallies(campaign_key(campaign, "delivery")),
        )

    async def exists(self, campaign: str) -> bool:
        return await self.store.get(campaign_key(campaign, "meta")) is not None

    async def rate(self, campaign: str) -> float | None:
        """The messages per second the campaign was queued with."""
        raw = await self.store.get(campaign_key(campaign, "meta"))
        rate = json.loads(raw).get("rate") if raw else None
        return float(rate) if rate else None


class Pacer:
    """Spaces sends per sending number at a rate, across every worker.

    Jobs are queued already spaced (arq ``_defer_by``), but a worker that was
    down meets a backlog of due jobs; the pacer keeps even that at the rate.
    Each send takes the next free slot (:meth:`~bot.storage.jobs.JobStore.next_slot`):
    one within two slots (at most ``max_sleep``) is waited for in place; a
    later one is *held* for this send and the job is deferred to ``lead``
    seconds before it, then sleeps the rest in place: a queue polls (arq
    every half second), so a job deferred to its very slot would run up to
    a poll late, and the sends of one poll would go out together. A backlog
    of N costs N extra job runs, never N squared, and no worker sits on a
    slot long (a worker runs only so many jobs at once).

    A held slot missed by more than one slot (the worker was busy or down
    again) is given up for a fresh one: late sends going out together would
    break the rate (no second holds more), and a backlog never goes out at
    once. Arriving ``lead`` early is what keeps that rare.

    Example::

        delay = await pacer.turn(ref, sender="+15005550006", rate=1.0)
        if delay:
            raise SendDeferred(delay)   # the job runs again then, its slot held
    """

    def __init__(self, store: JobStore, *, max_sleep: float = 1.0, lead: float = 0.6) -> None:
        self.store = store
        self.max_sleep = max_sleep
        self.lead = lead

    async def turn(self, ref: str, *, sender: str, rate: float) -> float:
        """0 once this send may go (after a short sleep); else seconds to defer it by."""
        pace = "pace:{" + sender + "}"
        held_key = f"{pace}:held:{ref}"
        max_sleep = min(self.max_sleep, 2.0 / rate)
        # At most a few sends of one number asleep at once (a worker's job slots are few).
        lead = min(self.lead, 4.0 / rate)
        held = await self.store.get(held_key)
        now = time.time()
        if held is not None and now - float(held) > 1.0 / rate:
            await self.store.delete(held_key)
            held = None
        if held is None:
            wait = await self.store.next_slot(pace, 1.0 / rate)
            if wait > max_sleep:
                await self.store.set(held_key, repr(now + wait), ttl=wait + 3600)
                return max(wait - lead, 0.001)
        else:
            wait = float(held) - now
            if wait > max(max_sleep, lead) + 0.5:  # run early (a clock step): not its turn yet
                return wait - lead
            await self.store.delete(held_key)
        if wait > 0:
            await asyncio.sleep(wait)
        return 0.0

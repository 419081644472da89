"""Broadcasts: one content template to a list of recipients, throttled, once each.

A recipients file is CSV (a header row) or JSON (a list of objects, or
``{"recipients": [...]}``). Each recipient has a number (column ``to``,
``phone`` or ``number``; ``whatsapp:+1...`` selects WhatsApp, as does a
``channel`` column) and the template's variables (the other columns, or a
``variables`` object in JSON)::

    to,name,service
    +14155550101,Ana,cleaning
    whatsapp:+14155550102,Ben,check-up

:func:`queue_broadcast` validates every row first (nothing is queued from a
file with an error), then queues one job per distinct recipient spaced
``1 / rate`` seconds apart (arq ``_defer_by``), skipping opted-out and
unreachable numbers. The idempotency key ``bcast:<campaign>:<address>``
makes a second run send nothing: recipients already sent are not queued
again, and every outcome is counted once (:mod:`bot.outbound.campaigns`).

Example::

    recipients = load_recipients(Path("spring.csv"))
    report = await queue_broadcast(outbound, recipients, template="welcome_back",
                                   campaign="spring", rate=1.0, bot="+15005550006")
    report.queued, report.skipped   # 997, {"opted_out": 3}
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import phonenumbers

from bot.errors import BotError, TemplateError
from bot.messages import Channel, TemplateMessage
from bot.outbound.ledger import ref_for
from bot.outbound.models import SendRequest
from bot.outbound.outbox import recipient_id
from bot.storage.base import ConversationKey

if TYPE_CHECKING:
    from bot.outbound.service import Outbound

NUMBER_COLUMNS: Final = ("to", "phone", "number")
MAX_PROBLEMS: Final = 20
# Recipients checked concurrently while queuing (store round trips).
CHECK_BATCH: Final = 50


class RecipientFileError(BotError):
    """The recipients file is unreadable or has invalid rows (all named, by line)."""


@dataclass(frozen=True, slots=True)
class Recipient:
    """One row: who, on which channel, with which template variables."""

    channel: Channel
    number: str
    variables: Mapping[str, str]
    line: int

    @property
    def address(self) -> str:
        return self.channel.address(self.number)


@dataclass(frozen=True, slots=True)
class QueueReport:
    """What queuing did: ``queued`` jobs, ``skipped`` by reason, ``already_sent`` earlier."""

    campaign: str
    recipients: int
    queued: int = 0
    already_sent: int = 0
    duplicates_in_file: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # Quiet hours: queued for later, by release time ("08:00 America/New_York (Tue Mar 3)").
    held: dict[str, int] = field(default_factory=dict)


def default_campaign(path: Path, template: str) -> str:
    """A campaign id from the file's content: the same file queued twice is one campaign."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return f"{template}-{digest}"


def load_recipients(path: Path, *, channel: Channel = Channel.SMS) -> list[Recipient]:
    """Read a CSV or JSON recipients file; raise :class:`RecipientFileError` naming each bad row."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RecipientFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    rows = _json_rows(path, text) if path.suffix.lower() == ".json" else _csv_rows(path, text)
    recipients: list[Recipient] = []
    problems: list[str] = []
    for line, row in rows:
        try:
            recipients.append(_recipient(row, line, channel))
        except ValueError as exc:
            problems.append(f"{path}:{line}: {exc}")
    if problems:
        raise RecipientFileError(_problems(problems))
    if not recipients:
        raise RecipientFileError(f"{path}: no recipients")
    return recipients


def _csv_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or not any(c.strip().lower() in NUMBER_COLUMNS for c in reader.fieldnames):
        raise RecipientFileError(f"{path}: the header needs a number column ({', '.join(NUMBER_COLUMNS)})")
    # Line numbers count the header as line 1.
    return [(index + 2, {k.strip(): v for k, v in row.items() if k}) for index, row in enumerate(reader)]


def _json_rows(path: Path, text: str) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RecipientFileError(f"{path}: invalid JSON: {exc}") from None
    if isinstance(data, dict):
        data = data.get("recipients")
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise RecipientFileError(f"{path}: expected a list of recipient objects (or {{\"recipients\": [...]}})")
    # "line" is the item's position (1-based) for JSON.
    return [(index + 1, item) for index, item in enumerate(data)]


def _recipient(row: Mapping[str, Any], line: int, default: Channel) -> Recipient:
    lowered = {str(k).strip().lower(): v for k, v in row.items()}
    raw = next((str(lowered[c]).strip() for c in NUMBER_COLUMNS if lowered.get(c)), "")
    if not raw:
        raise ValueError("no number")
    channel, number = Channel.from_address(raw)
    if ":" not in raw:
        channel = default
    if lowered.get("channel"):
        try:
            channel = Channel(str(lowered["channel"]).strip().lower())
        except ValueError:
            raise ValueError(f"unknown channel {lowered['channel']!r}") from None
    number = _e164(number)
    if isinstance(row.get("variables"), dict):
        variables = {str(k): str(v) for k, v in row["variables"].items()}
    else:
        skip = {*NUMBER_COLUMNS, "channel"}
        variables = {str(k).strip(): str(v) for k, v in row.items()
                     if str(k).strip().lower() not in skip and v is not None}
    return Recipient(channel=channel, number=number, variables=variables, line=line)


def _e164(number: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{number!r} is not an international number (+ and country code)") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{number!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _problems(problems: Sequence[str]) -> str:
    shown = list(problems[:MAX_PROBLEMS])
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS} more")
    return "invalid recipients:\n  " + "\n  ".join(shown)


def request_for(recipient: Recipient, *, template: str, campaign: str, bot: str) -> SendRequest:
    """The send for one recipient; its key makes it once-only per (campaign, recipient)."""
    return SendRequest(
        key=ConversationKey(recipient.channel, bot, recipient.number),
        template=TemplateMessage(template, dict(recipient.variables)),
        idempotency_key=f"bcast:{campaign}:{recipient.address}",
        purpose="broadcast",
        campaign=campaign,
    )


async def queue_broadcast(
    outbound: Outbound,
    recipients: Sequence[Recipient],
    *,
    template: str,
    campaign: str,
    rate: float,
    bot: str,
    progress: Callable[[int], None] | None = None,
) -> QueueReport:
    """Validate, then queue one send per distinct recipient, ``1 / rate`` seconds apart."""
    if rate <= 0:
        raise ValueError("rate must be positive")
    problems = []
    for recipient in recipients:
        try:
            outbound.templates.render_variables(template, recipient.variables)
        except TemplateError as exc:
            problems.append(f"line {recipient.line}: {exc}")
    if problems:
        raise RecipientFileError(_problems(problems))

    distinct: dict[str, Recipient] = {}
    for recipient in recipients:
        distinct.setdefault(recipient.address, recipient)
    await outbound.campaigns.start(campaign, template=template, total=len(distinct), rate=rate)

    queued = already = 0
    skipped: Counter[str] = Counter()
    held: Counter[str] = Counter()
    gate = outbound.sender.quiet
    items = list(distinct.values())
    for start in range(0, len(items), CHECK_BATCH):
        batch = [request_for(r, template=template, campaign=campaign, bot=bot)
                 for r in items[start : start + CHECK_BATCH]]
        verdicts = await asyncio.gather(*(_verdict(outbound, request) for request in batch))
        writes: list[Awaitable[object]] = []
        for request, verdict in zip(batch, verdicts, strict=True):
            if verdict == "sent":
                already += 1
            elif verdict is not None:
                skipped[verdict] += 1
                writes.append(outbound.campaigns.record(campaign, recipient_id(request.key), f"skipped:{verdict}"))
            else:
                hold = await gate.plan(request) if gate is not None else None
                if hold is None:
                    # Spaced by the sender's rate; arq runs each when it is due.
                    writes.append(outbound.outbox.submit(request, delay=(queued - sum(held.values())) / rate))
                else:
                    # Quiet hours where they live: queued for the release time (the pacer
                    # spaces them from there at the campaign's rate).
                    held[hold.text().removeprefix("until ")] += 1
                    if gate is not None:
                        writes.append(gate.record(request, hold))
                    writes.append(outbound.outbox.submit_held(request, hold))
                queued += 1
        await asyncio.gather(*writes)
        if progress is not None:
            progress(len(batch))
    return QueueReport(campaign=campaign, recipients=len(distinct), queued=queued, already_sent=already,
                       duplicates_in_file=len(recipients) - len(distinct), skipped=dict(skipped),
                       held=dict(held))


async def _verdict(outbound: Outbound, request: SendRequest) -> str | None:
    """``sent`` (an earlier run did), a skip reason, or None (queue it)."""
    record = await outbound.sender.ledger.get(ref_for(request.idempotency_key))
    if record is not None and record.state == "sent":
        return "sent"
    return await outbound.sender.suppressions.reason(request.key)

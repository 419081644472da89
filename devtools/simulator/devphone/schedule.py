"""The dev phone's *Clock* panel: simulated time, messages held for quiet hours, broadcasts and jobs.

- ``GET  /dev/api/clock``: the dev server's time (UTC and the business's zone);
- ``POST /dev/api/clock`` ``{"advance": "9h30m"}``: move it forward; held
  messages whose release time it reached go out at once (the in-process
  outbox; with ``REDIS_URL`` the queue releases them on its own schedule);
- ``GET  /dev/api/held/{channel}/{user}``: what the bot holds for one phone
  (quiet hours), each with its release time in the recipient's zone;
- ``POST /dev/api/broadcast``: ``bot broadcast`` to some phones
  (``{"template": "welcome_back", "variables": {"name": "Ana"},
  "to": [{"channel": "sms", "user": "+14155550100"}]}``);
- ``POST /dev/api/jobs/{name}``: run a scheduled job now (``reminders``).

Example::

    app.include_router(create_schedule_router(SchedulePanel(clock=clock, held=gate.held, ...)))
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from bot.clock import Clock
from bot.errors import BotError
from bot.messages import Channel
from bot.outbound.broadcast import QueueReport, Recipient
from bot.outbound.held import HeldMessage
from bot.storage.base import ConversationKey
from devtools.replay.durations import parse_duration
from devtools.simulator.devphone.phone import PhoneError, check_number

#: Queues a broadcast (``queue_broadcast`` over the bot's outbound parts).
Broadcaster = Callable[[Sequence[Recipient], str, str], Awaitable[QueueReport]]
#: Broadcast pace in the dev server: quick, so a developer is not kept waiting.
DEV_BROADCAST_RATE = 20.0


@dataclass(frozen=True, slots=True)
class SchedulePanel:
    """What the Clock panel works on, each part narrow.

    ``advance`` is None when the clock cannot be moved (a system clock given by
    the caller); ``release_due`` is the in-process outbox's (None with Redis).
    """

    clock: Clock
    advance: Callable[[timedelta], None] | None
    held: Callable[[ConversationKey], Awaitable[list[HeldMessage]]] | None
    release_due: Callable[[], int] | None
    broadcast: Broadcaster
    jobs: Mapping[str, Callable[[], Awaitable[Any]]]
    bot: str
    business_tz: ZoneInfo


class AdvanceIn(BaseModel):
    """How far to move the clock: ``90s``, ``15m``, ``9h30m``, ``2d``."""

    advance: str = Field(min_length=2, max_length=16)


class PhoneIn(BaseModel):
    channel: Channel
    user: str = Field(max_length=32)


class BroadcastIn(BaseModel):
    """A broadcast of one content template to some phones."""

    template: str = Field(min_length=1, max_length=64)
    variables: dict[str, str] = Field(default_factory=dict)
    to: list[PhoneIn] = Field(min_length=1, max_length=50)
    campaign: str | None = Field(default=None, max_length=64)


def create_schedule_router(panel: SchedulePanel) -> APIRouter:
    """The Clock panel's JSON endpoints."""
    router = APIRouter(include_in_schema=False)

    @router.get("/dev/api/clock")
    async def clock() -> dict[str, Any]:
        return _clock(panel)

    @router.post("/dev/api/clock")
    async def advance(request: AdvanceIn) -> Response:
        if panel.advance is None:
            return JSONResponse({"detail": "this server's clock is the system clock; it cannot be moved"},
                                status_code=409)
        try:
            delta = parse_duration(request.advance.strip())
        except ValueError as exc:
            return JSONResponse({"detail": f"{exc}: use 90s, 15m, 9h30m or 2d"}, status_code=422)
        panel.advance(delta)
        released = panel.release_due() if panel.release_due is not None else 0
        return JSONResponse({**_clock(panel), "released": released})

    @router.get("/dev/api/held/{channel}/{user}")
    async def held(channel: Channel, user: str) -> dict[str, Any]:
        if panel.held is None:
            return {"held": []}
        messages = await panel.held(ConversationKey(channel, bot=panel.bot, user=user))
        return {"held": [_held_dict(m) for m in messages]}

    @router.post("/dev/api/broadcast")
    async def broadcast(request: BroadcastIn) -> Response:
        try:
            recipients = [Recipient(p.channel, check_number(p.user), request.variables, line)
                          for line, p in enumerate(request.to, 1)]
        except PhoneError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        campaign = request.campaign or _campaign(request, panel.clock)
        try:
            report = await panel.broadcast(recipients, request.template, campaign)
        except BotError as exc:  # an unknown template, missing variables
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse({"campaign": report.campaign, "queued": report.queued, "held": report.held,
                             "skipped": report.skipped, "already_sent": report.already_sent})

    @router.post("/dev/api/jobs/{name}")
    async def run_job(name: str) -> Response:
        job = panel.jobs.get(name)
        if job is None:
            return JSONResponse({"detail": f"no job {name!r}; known: {sorted(panel.jobs)}"}, status_code=404)
        await job()
        return JSONResponse({"job": name, "ran": True})

    return router


def _clock(panel: SchedulePanel) -> dict[str, Any]:
    now = panel.clock.now()
    local = now.astimezone(panel.business_tz)
    return {"now": now.isoformat(), "local": f"{local:%a %b} {local.day}, {local:%H:%M} {panel.business_tz.key}",
            "movable": panel.advance is not None}


def _held_dict(message: HeldMessage) -> dict[str, Any]:
    return {"ref": message.ref, "purpose": message.purpose, "reason": message.reason, "zone": message.zone,
            "release_at": message.release_at.isoformat(), "until": message.until(), "preview": message.preview}


def _campaign(request: BroadcastIn, clock: Clock) -> str:
    # Like `bot broadcast`'s default (template + a hash of what was sent), plus the
    # time: pressing the button again later is a new campaign, not a no-op.
    who = ",".join(f"{p.channel.value}:{p.user}" for p in request.to)
    digest = hashlib.sha256(f"{who}|{sorted(request.variables.items())}|{clock.timestamp()}".encode())
    return f"{request.template}-dev-{digest.hexdigest()[:10]}"

"""HTTP for the dev phone and the conversation view (``bot dev`` only).

Pages:

- ``GET /dev/``                                     the dev phone (static page, ``static/``)
- ``GET /dev/conversations``                        conversations the bot had, latest first
- ``GET /dev/conversations/{channel}/{bot}/{user}`` one conversation's turns and stored state

JSON for the page (and for scripts):

- ``GET  /dev/api/config``                          bot number, presets, samples, failure codes, templates
- ``GET  /dev/api/events``                          live feed (SSE): simulator events and ``api.rejected``
- ``GET  /dev/api/phones/{channel}/{user}``         one phone's thread and notes
- ``POST /dev/api/send``                            the phone texts the bot
- ``PUT|DELETE /dev/api/failures/{channel}/{user}`` make deliveries to a number fail, or stop
- ``GET  /dev/api/conversations[/{channel}/{bot}/{user}]``  the conversation view as JSON

Example::

    install_devphone(app, phone, turn_log, store)
    # curl -X PUT localhost:8000/dev/api/failures/sms/+14155550100 -d '{"error_code": 30003}'
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import anyio
import jinja2
from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from bot.appointments import AppointmentBook
from bot.clock import Clock, SystemClock
from bot.handoff import staff_until
from bot.messages import Channel, Choice, Location
from bot.storage.base import ConversationKey, ConversationState, ConversationStore
from bot.storage.stores import Stores
from devtools.simulator.devphone.calls import create_call_router
from devtools.simulator.devphone.phone import DevPhone, Feed, PhoneError
from devtools.simulator.devphone.seen import delivered_per_turn
from devtools.simulator.devphone.turns import TurnLog

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"


class ButtonIn(BaseModel):
    """A quick-reply button the user pressed."""

    payload: str = Field(min_length=1, max_length=256)
    title: str = Field(min_length=1, max_length=256)


class LocationIn(BaseModel):
    """A shared location."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    label: str | None = Field(default=None, max_length=256)
    address: str | None = Field(default=None, max_length=256)


class SendIn(BaseModel):
    """What the page sends: text, a button press, a location or a sample image."""

    channel: Channel
    user: str = Field(max_length=32)
    body: str = Field(default="", max_length=5000)
    button: ButtonIn | None = None
    replied_to: str | None = Field(default=None, max_length=64)
    location: LocationIn | None = None
    image: str | None = Field(default=None, max_length=64)


class FailureIn(BaseModel):
    """The failure to inject: a Twilio error code and the final status."""

    error_code: int = Field(ge=10000, le=99999)
    status: Literal["failed", "undelivered"] = "undelivered"


def install_devphone(
    app: FastAPI, phone: DevPhone, turns: TurnLog, store: ConversationStore, *, clock: Clock | None = None
) -> None:
    """Add the dev phone, its static files and the conversation view to ``app``.

    ``clock`` is the bot's (a hand-off's end is read against it).

    Example::

        install_devphone(app, phone, turn_log, app.state.services.store, clock=app.state.services.clock)
    """
    app.include_router(create_devphone_router(phone, turns, store, clock=clock))
    app.include_router(create_call_router(phone))
    app.mount("/dev/static", StaticFiles(directory=STATIC_DIR), name="devphone-static")


def create_devphone_router(
    phone: DevPhone, turns: TurnLog, store: ConversationStore, *, clock: Clock | None = None
) -> APIRouter:
    """The dev phone's and the conversation view's routes (static files excluded).

    Example::

        app.include_router(create_devphone_router(phone, turn_log, store, clock=clock))
    """
    router = APIRouter(include_in_schema=False)
    pages = _page_templates()
    clock = clock or SystemClock()

    @router.get("/")
    @router.get("/dev")
    async def home() -> RedirectResponse:
        return RedirectResponse("/dev/")

    @router.get("/dev/")
    async def dev_phone() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    @router.get("/dev/api/config")
    async def config() -> dict[str, Any]:
        return phone.config()

    @router.get("/dev/api/phones/{channel}/{user}")
    async def phone_snapshot(channel: Channel, user: str) -> dict[str, Any]:
        snapshot = phone.snapshot(channel, user)
        key = ConversationKey(channel, bot=phone.bot, user=user)
        # Twilio's opt-out list is the simulator's; the bot keeps its own (WhatsApp STOP).
        snapshot["bot_opted_out"] = await store.is_opted_out(key)
        # Why the bot went quiet: staff have the conversation (until this time, or "bot").
        state = await store.load(key)
        until = staff_until(state.data, clock.now()) if state is not None else None
        snapshot["with_staff"] = {"until": until.isoformat()} if until is not None else None
        return snapshot

    @router.post("/dev/api/send")
    async def send(request: SendIn) -> Response:
        try:
            result = await phone.send(
                request.channel,
                request.user,
                body=request.body,
                button=Choice(request.button.payload, request.button.title) if request.button else None,
                replied_to=request.replied_to,
                location=Location(**request.location.model_dump()) if request.location else None,
                image=request.image,
            )
        except PhoneError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse(
            {
                "sid": result.message.sid,
                "status_code": result.status_code,
                "error_code": result.error_code,
                "error": result.error,
                "replies": [m.sid for m in result.replies],
                "keyword_reply": result.keyword_reply.sid if result.keyword_reply else None,
            }
        )

    @router.put("/dev/api/failures/{channel}/{user}")
    async def set_failure(channel: Channel, user: str, request: FailureIn) -> Response:
        try:
            rule = phone.set_failure(channel, user, request.error_code, status=request.status)
        except PhoneError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        return JSONResponse({"error_code": rule.error_code, "status": rule.status, "rate": rule.rate})

    @router.delete("/dev/api/failures/{channel}/{user}", status_code=204)
    async def clear_failure(channel: Channel, user: str) -> Response:
        phone.clear_failure(channel, user)
        return Response(status_code=204)

    @router.get("/dev/api/events")
    async def events() -> EventSourceResponse:
        shutdown = anyio.Event()  # set by sse-starlette when the server stops

        async def stream() -> AsyncIterator[dict[str, Any]]:
            with phone.subscribe() as feed:
                # "ready" tells the page the feed is live, so a snapshot taken
                # now misses nothing (and is retaken after every reconnect).
                yield {"event": "ready", "data": "{}", "retry": 1000}
                # Ending the feed on shutdown ends the response cleanly (Ctrl-C
                # with a tab open), rather than having it cut off.
                closer = asyncio.get_running_loop().create_task(_close_on(shutdown, feed))
                try:
                    async for event in feed:
                        yield {"data": json.dumps(event, default=str)}
                finally:
                    closer.cancel()

        return EventSourceResponse(stream(), ping=15, shutdown_event=shutdown, shutdown_grace_period=1)

    @router.get("/dev/api/conversations")
    async def conversation_list() -> dict[str, Any]:
        return {"conversations": [c.to_dict() for c in turns.conversations()]}

    @router.get("/dev/api/conversations/{channel}/{bot}/{user}")
    async def conversation_json(channel: Channel, bot: str, user: str) -> dict[str, Any]:
        return await _conversation(phone, turns, store, ConversationKey(channel, bot=bot, user=user))

    @router.get("/dev/conversations")
    async def conversations_page() -> HTMLResponse:
        html = pages.get_template("conversations.html").render(conversations=turns.conversations())
        return HTMLResponse(html)

    @router.get("/dev/conversations/{channel}/{bot}/{user}")
    async def conversation_page(channel: Channel, bot: str, user: str) -> HTMLResponse:
        key = ConversationKey(channel, bot=bot, user=user)
        data = await _conversation(phone, turns, store, key)
        html = pages.get_template("conversation.html").render(
            key=key,
            turns=turns.turns(key),
            seen={t["message_sid"]: t["seen"] for t in data["turns"]},
            state_json=json.dumps(data["state"], indent=2, ensure_ascii=False) if data["state"] else None,
            opted_out=data["opted_out"],
            appointments=data["appointments"],
        )
        return HTMLResponse(html)

    return router


async def _close_on(event: anyio.Event, feed: Feed) -> None:
    await event.wait()
    feed.close()


async def _conversation(
    phone: DevPhone, turns: TurnLog, store: ConversationStore, key: ConversationKey
) -> dict[str, Any]:
    state = await store.load(key)
    seen = delivered_per_turn(phone.sim.conversation(key.channel, user=key.user, bot=key.bot), phone.sim.templates)
    return {
        "channel": key.channel.value,
        "bot": key.bot,
        "user": key.user,
        "turns": [{**t.to_dict(), "seen": [s.to_dict() for s in seen.get(t.message_sid, ())]}
                  for t in turns.turns(key)],
        "state": _state_dict(state) if state else None,
        "opted_out": await store.is_opted_out(key),
        # Each appointment's status and its changes (bot/confirmations; docs/confirmations.md).
        "appointments": [a.summary() for a in await AppointmentBook(Stores.beside(store).appointments).booked_by(key)],
    }


def _state_dict(state: ConversationState) -> dict[str, Any]:
    data = asdict(state)
    data["channel"] = state.channel.value
    plain: dict[str, Any] = json.loads(json.dumps(data, default=str))
    return plain


def _page_templates() -> jinja2.Environment:
    """The conversation pages' templates, compiled once; autoescaped (bodies are user text)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.globals["channel_names"] = {"sms": "SMS", "whatsapp": "WhatsApp"}
    env.globals["option_labels"] = {"numbered": "Options the user saw (numbered lines)",
                                    "buttons": "Quick-reply buttons the user saw", "list": "List the user saw"}
    env.filters["tojson_pretty"] = lambda value: json.dumps(value, ensure_ascii=False, sort_keys=True)
    return env


def _when(timestamp: float) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

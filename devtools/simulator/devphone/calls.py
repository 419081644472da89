"""The dev phone's Call mode: call the bot, speak by typing, press keys, hang up.

A thin JSON API over :class:`~devtools.simulator.calls.CallPlayer` for the page
(``static/call.js``): each answer lists the ``<Say>`` texts the caller heard
(shown as bubbles, optionally spoken by the browser's speech synthesis) and
whether the bot is listening or the call has ended.

- ``POST /dev/api/calls``                 ``{"user": "+1415..."}`` → the greeting
- ``POST /dev/api/calls/{sid}/say``       ``{"text": "...", "confidence": 0.9}``
- ``POST /dev/api/calls/{sid}/press``     ``{"digits": "1"}``
- ``POST /dev/api/calls/{sid}/silence``   (the caller says nothing)
- ``POST /dev/api/calls/{sid}/hangup``

Example::

    app.include_router(create_call_router(phone))
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from devtools.simulator.calls import DIAL_OUTCOMES, CallBook, CallError, CallPlayer, CallTurn
from devtools.simulator.devphone.phone import DevPhone, PhoneError, check_number


class CallIn(BaseModel):
    user: str
    dial_status: str = "completed"


class SayIn(BaseModel):
    text: str = Field(min_length=1, max_length=500)
    confidence: float = Field(default=0.92, ge=0, le=1)


class PressIn(BaseModel):
    digits: str = Field(pattern=r"^[0-9*#]{1,20}$")


def create_call_router(phone: DevPhone) -> APIRouter:
    """The Call mode's routes, playing calls against the bot the dev phone texts."""
    router = APIRouter(include_in_schema=False)
    book = CallBook.of(phone.sim)

    def player(sid: str) -> CallPlayer:
        found = book.players.get(sid)
        if found is None:
            raise HTTPException(404, f"no call {sid}")
        return found

    async def play(call: CallPlayer, action: Any) -> dict[str, Any]:
        try:
            turn: CallTurn = await action
        except CallError as exc:
            raise HTTPException(409, str(exc)) from exc
        return {"sid": call.call.sid, "said": list(turn.said), "listening": turn.listening,
                "ended": call.ended, "status": call.call.status, "dialed": turn.dialed,
                "dial_status": turn.dial_status, "duration": call.call.duration}

    @router.post("/dev/api/calls")
    async def start(request: CallIn) -> dict[str, Any]:
        try:
            user = check_number(request.user)
        except PhoneError as exc:
            raise HTTPException(400, str(exc)) from exc
        if request.dial_status not in DIAL_OUTCOMES:
            raise HTTPException(400, f"dial_status must be one of {', '.join(sorted(DIAL_OUTCOMES))}")
        call = CallPlayer(phone.sim, user=user, bot=phone.bot, dial_status=request.dial_status)
        return await play(call, call.start())

    @router.post("/dev/api/calls/{sid}/say")
    async def say(sid: str, request: SayIn) -> dict[str, Any]:
        call = player(sid)
        return await play(call, call.say(request.text, confidence=request.confidence))

    @router.post("/dev/api/calls/{sid}/press")
    async def press(sid: str, request: PressIn) -> dict[str, Any]:
        call = player(sid)
        return await play(call, call.press(request.digits))

    @router.post("/dev/api/calls/{sid}/silence")
    async def silence(sid: str) -> dict[str, Any]:
        call = player(sid)
        return await play(call, call.silence())

    @router.post("/dev/api/calls/{sid}/hangup")
    async def hang_up(sid: str) -> dict[str, Any]:
        call = player(sid)
        return await play(call, call.hang_up())

    return router

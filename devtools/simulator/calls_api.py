"""Twilio's Calls REST resource, served locally by the simulator.

The calls the simulated phone placed (:mod:`devtools.simulator.calls`) and the
ones created here, at Twilio's paths with Twilio's JSON
(``api.v2010.account.call`` in ``twilio_api_v2010.json``):

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json``       → 201 Call (``To``, ``From`` and ``Url`` or ``Twiml``)
- ``GET  /2010-04-01/Accounts/{AccountSid}/Calls.json``       → 200 page (``To``, ``From``, ``Status`` filters)
- ``GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json`` → 200 / 404
- ``POST /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json`` → 200 (``Status=completed`` hangs up)

An outbound call created with ``Twiml`` is answered at once: its ``<Say>``
texts are what the callee heard, and it completes.

Example::

    client.calls.create(to="+14155550123", from_="+15005550006", twiml="<Response><Say>Hi</Say></Response>")
    client.calls.list(status="completed")
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from devtools.simulator.api import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, _authenticate, _error, _int, _not_found
from devtools.simulator.calls import CallBook, SimCall
from devtools.simulator.errors import TwilioApiError
from devtools.simulator.rules import API_VERSION
from devtools.simulator.state import Simulator


def create_calls_router(sim: Simulator) -> APIRouter:
    """The Calls endpoints at Twilio's paths, bound to ``sim``'s :class:`CallBook`."""
    router = APIRouter()
    account = f"/{API_VERSION}/Accounts/{{account_sid}}"

    @router.post(account + "/Calls.json", status_code=201)
    async def create_call(request: Request, account_sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        form = {k: v for k, v in (await request.form()).multi_items() if isinstance(v, str)}
        to, from_ = form.get("To", "").strip(), form.get("From", "").strip()
        if not to:
            return _error(TwilioApiError(21201, "No 'To' number is specified"))
        if not from_:
            return _error(TwilioApiError(21213, "No 'From' number is specified"))
        twiml, url = form.get("Twiml", ""), form.get("Url", "")
        if not (twiml or url or form.get("ApplicationSid")):
            return _error(TwilioApiError(21205, "Url parameter is required"))
        now = sim.clock.now()
        call = CallBook.of(sim).add(SimCall(sid=sim.new_sid("CA"), account_sid=account_sid, from_=from_, to=to,
                                            direction="outbound-api", status="queued", created=now))
        if twiml:
            try:
                root = ET.fromstring(twiml)  # noqa: S314 -- the caller's own TwiML, in development
            except ET.ParseError:
                return _error(TwilioApiError(13201, "Invalid TwiML"))
            # Answered at once: the callee hears every <Say>, then the call ends.
            call.said.extend(" ".join((s.text or "").split()) for s in root.iter("Say") if (s.text or "").strip())
            call.status, call.start_time, call.end_time = "completed", now, now
            call.duration = max(1, round(sum(len(s.split()) for s in call.said) / 2.5))
        return JSONResponse(call.resource(), status_code=201)

    @router.get(account + "/Calls.json")
    async def list_calls(request: Request, account_sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        return JSONResponse(_page(CallBook.of(sim), request, account_sid))

    @router.get(account + "/Calls/{sid}.json")
    async def fetch_call(request: Request, account_sid: str, sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        call = CallBook.of(sim).get(sid)
        if call is None or call.account_sid != account_sid:
            return _not_found(request)
        return JSONResponse(call.resource())

    @router.post(account + "/Calls/{sid}.json")
    async def update_call(request: Request, account_sid: str, sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        call = CallBook.of(sim).get(sid)
        if call is None or call.account_sid != account_sid:
            return _not_found(request)
        status = ((await request.form()).get("Status") or "")
        if status in ("completed", "canceled"):
            player = CallBook.of(sim).players.get(sid)
            if player is not None:
                await player.hang_up()
            elif call.status in ("queued", "ringing", "in-progress"):
                call.status, call.end_time = status, sim.clock.now()
        elif status:
            return _error(TwilioApiError(21220, f"Invalid call state: {status}"))
        return JSONResponse(call.resource())

    return router


def _page(book: CallBook, request: Request, account_sid: str) -> dict[str, Any]:
    query = request.query_params
    page_size = min(max(_int(query.get("PageSize"), DEFAULT_PAGE_SIZE), 1), MAX_PAGE_SIZE)
    page = max(_int(query.get("Page"), 0), 0)
    filters = {key: query[key] for key in ("To", "From", "Status") if query.get(key)}
    matching = [
        c for c in reversed(list(book.calls.values()))
        if c.account_sid == account_sid
        and filters.get("To", c.to) == c.to and filters.get("From", c.from_) == c.from_
        and filters.get("Status", c.status) == c.status
    ]
    start = page * page_size
    items = matching[start : start + page_size]
    path = f"/{API_VERSION}/Accounts/{account_sid}/Calls.json"

    def uri(number: int) -> str:
        return f"{path}?{urlencode([*filters.items(), ('PageSize', str(page_size)), ('Page', str(number))])}"

    return {
        "calls": [c.resource() for c in items], "end": start + max(len(items) - 1, 0), "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if start + page_size < len(matching) else None, "page": page,
        "page_size": page_size, "previous_page_uri": uri(page - 1) if page > 0 else None, "start": start,
        "uri": uri(page),
    }

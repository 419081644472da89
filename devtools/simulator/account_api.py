"""The set-up endpoints of the simulated account, at Twilio's paths (see :mod:`devtools.simulator.account`).

- ``GET  /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers.json`` (``PhoneNumber`` filter)
- ``GET|POST /2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{Sid}.json``
- ``GET|POST /v1/Services/{Sid}`` (Messaging Service)
- ``GET  /v2/Channels/Senders?Channel=whatsapp``, ``GET|POST /v2/Channels/Senders/{Sid}``
- ``GET  /v1/ContentAndApprovals``

Example::

    router.include_router(create_account_router(sim))
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from devtools.simulator.api import _authenticate, _error, _int, _not_found
from devtools.simulator.errors import TwilioApiError
from devtools.simulator.rules import API_VERSION

if TYPE_CHECKING:
    from devtools.simulator.state import Simulator

MAX_PAGE_SIZE = 1000


def create_account_router(sim: Simulator) -> APIRouter:
    """Numbers, Messaging Services, WhatsApp senders and content approvals of ``sim``'s account."""
    router = APIRouter()
    numbers_path = f"/{API_VERSION}/Accounts/{{account_sid}}/IncomingPhoneNumbers"

    @router.get(numbers_path + ".json")
    async def list_numbers(request: Request, account_sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        query = request.query_params
        wanted = query.get("PhoneNumber", "")
        page_size = min(max(_int(query.get("PageSize"), 50), 1), MAX_PAGE_SIZE)
        page = max(_int(query.get("Page"), 0), 0)
        matching = [n for n in sim.account.numbers.values() if not wanted or wanted in n.phone_number]
        items = matching[page * page_size : (page + 1) * page_size]
        path = f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers.json"

        def uri(number: int) -> str:
            params = ([("PhoneNumber", wanted)] if wanted else []) + [("PageSize", page_size), ("Page", number)]
            return f"{path}?{urlencode(params)}"

        more = (page + 1) * page_size < len(matching)
        return JSONResponse({
            "incoming_phone_numbers": [n.resource() for n in items],
            "end": page * page_size + max(len(items) - 1, 0),
            "first_page_uri": uri(0),
            "next_page_uri": uri(page + 1) if more else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": uri(page - 1) if page > 0 else None,
            "start": page * page_size,
            "uri": uri(page),
        })

    @router.get(numbers_path + "/{sid}.json")
    async def fetch_number(request: Request, account_sid: str, sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        number = sim.account.numbers.get(sid)
        return JSONResponse(number.resource()) if number else _not_found(request)

    @router.post(numbers_path + "/{sid}.json")
    async def update_number(request: Request, account_sid: str, sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        number = sim.account.numbers.get(sid)
        if number is None:
            return _not_found(request)
        form = {key: str(value) for key, value in (await request.form()).items()}
        try:
            sim.account.update_number(number, form)
        except ValueError as exc:
            return _error(TwilioApiError(21402 if "URL" in str(exc) else 20001, str(exc)))
        return JSONResponse(number.resource())

    @router.get("/v1/Services/{sid}")
    async def fetch_service(request: Request, sid: str) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        service = sim.account.services.get(sid)
        return JSONResponse(service.resource()) if service else _not_found(request)

    @router.post("/v1/Services/{sid}")
    async def update_service(request: Request, sid: str) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        service = sim.account.services.get(sid)
        if service is None:
            return _not_found(request)
        form = {key: str(value) for key, value in (await request.form()).items()}
        try:
            sim.account.update_service(service, form)
        except ValueError as exc:
            return _error(TwilioApiError(21402, str(exc)))
        return JSONResponse(service.resource())

    @router.get("/v2/Channels/Senders")
    async def list_senders(request: Request) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        channel = request.query_params.get("Channel", "")
        if channel.lower() != "whatsapp":
            return _error(TwilioApiError(20001, "Channel must be whatsapp"))
        senders = [s.resource() for s in sim.account.senders.values()]
        url = "https://messaging.twilio.com/v2/Channels/Senders?Channel=whatsapp&PageSize=50"
        return JSONResponse({"senders": senders, "meta": _meta("senders", url)})

    @router.get("/v2/Channels/Senders/{sid}")
    async def fetch_sender(request: Request, sid: str) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        sender = sim.account.senders.get(sid)
        return JSONResponse(sender.resource()) if sender else _not_found(request)

    @router.post("/v2/Channels/Senders/{sid}")
    async def update_sender(request: Request, sid: str) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        sender = sim.account.senders.get(sid)
        if sender is None:
            return _not_found(request)
        try:
            body: Any = json.loads(await request.body() or b"{}")
        except ValueError:
            return _error(TwilioApiError(20001, "the body must be JSON"))
        webhook = body.get("webhook") if isinstance(body, dict) else None
        if isinstance(webhook, dict):
            for name in ("callback_url", "fallback_url", "status_callback_url"):
                if isinstance(webhook.get(name), str):
                    setattr(sender, name, webhook[name])
        return JSONResponse(sender.resource())

    @router.get("/v1/ContentAndApprovals")
    async def content_and_approvals(request: Request) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        contents = []
        for template in sim.templates.values():
            status = sim.account.approvals.get(template.sid, "approved")
            approval: dict[str, Any] = {} if status == "unsubmitted" else {
                "name": template.name, "category": "UTILITY", "content_type": template.content_type,
                "status": status, "rejection_reason": "" if status != "rejected" else "INVALID_FORMAT",
                "allow_category_change": True,
            }
            contents.append({
                "date_created": None, "date_updated": None, "sid": template.sid, "account_sid": sim.account_sid,
                "friendly_name": template.name, "language": "en", "variables": {},
                "types": {template.content_type: {"body": template.body}}, "approval_requests": approval,
            })
        url = "https://content.twilio.com/v1/ContentAndApprovals?PageSize=50&Page=0"
        return JSONResponse({"contents": contents, "meta": _meta("contents", url)})

    return router


def _meta(key: str, url: str) -> dict[str, Any]:
    return {"page": 0, "page_size": 50, "first_page_url": url, "previous_page_url": None, "url": url,
            "next_page_url": None, "key": key}

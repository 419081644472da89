"""The Content API of the simulated account: create content templates and ask for their approval.

Twilio's paths (``twilio_content_v1.json``), so the official SDK works once
``client.content.base_url`` points here:

- ``POST /v1/Content`` (JSON: ``friendly_name``, ``language``, ``variables``,
  ``types``) → 201 with the new ``HX…`` SID. ``twilio/text``,
  ``twilio/quick-reply`` (``actions``: id, title) and ``twilio/list-picker``
  (``body``, ``button``, ``items``: id, item, description) are understood;
  a list picker holds 1 to 10 items, each title at most 24 characters, its
  description 72 and its button 20 (Twilio answers 400 otherwise).
- ``POST /v1/Content/{Sid}/ApprovalRequests/whatsapp`` (JSON: ``name``,
  ``category``) → 201 ``status: received``; the simulator approves at once,
  so ``GET /v1/Content/{Sid}/ApprovalRequests`` and ``/v1/ContentAndApprovals``
  then say ``approved``. A list picker stays in-session only whatever its
  approval, as on WhatsApp: sent outside the 24 h window it fails with 63016.

Example::

    client.content.base_url = "http://127.0.0.1:8010"
    content = client.content.v1.contents.create(ContentList.ContentCreateRequest({
        "friendly_name": "services", "language": "en", "types": {"twilio/list-picker": {
            "body": "Which service?", "button": "Choose one",
            "items": [{"id": "cleaning", "item": "Cleaning"}, ...]}}}))
    sim.templates[content.sid].list_button   # "Choose one"
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bot.messages import Choice
from bot.outbound.templates import (
    LIST_BUTTON_MAX,
    LIST_DESCRIPTION_MAX,
    LIST_ITEM_MAX,
    LIST_MAX_ITEMS,
    QUICK_REPLY_MAX,
)
from devtools.simulator.api import _authenticate, _error, _not_found
from devtools.simulator.errors import TwilioApiError
from devtools.simulator.templates import ContentTemplate

if TYPE_CHECKING:
    from devtools.simulator.state import Simulator

_BASE: Final = "https://content.twilio.com/v1/Content"


class ContentRequestError(ValueError):
    """A create request Twilio would refuse (400, code 20001)."""


def content_template(sid: str, body: dict[str, Any]) -> ContentTemplate:
    """The simulator's template for a ``POST /v1/Content`` JSON body; :class:`ContentRequestError` if invalid.

    >>> t = content_template("HX" + "1" * 32, {"friendly_name": "yn", "types": {"twilio/quick-reply": {
    ...     "body": "Book?", "actions": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}]}}})
    >>> t.content_type, [b.payload for b in t.buttons]
    ('twilio/quick-reply', ['yes', 'no'])
    """
    name = body.get("friendly_name")
    types = body.get("types")
    if not isinstance(name, str) or not name or not isinstance(types, dict) or len(types) != 1:
        raise ContentRequestError("friendly_name and exactly one of types are required")
    (kind, spec), = types.items()
    if not isinstance(spec, dict) or not isinstance(spec.get("body"), str) or not spec["body"]:
        raise ContentRequestError(f"types.{kind}.body is required")
    if kind == "twilio/text":
        return ContentTemplate(sid=sid, name=name, body=spec["body"], content_type=kind)
    if kind == "twilio/quick-reply":
        actions = _entries(spec, "actions", ("id", "title"), limit=QUICK_REPLY_MAX)
        return ContentTemplate(sid=sid, name=name, body=spec["body"], content_type=kind,
                               buttons=tuple(Choice(a.get("id") or a["title"], a["title"]) for a in actions))
    if kind == "twilio/list-picker":
        button = spec.get("button")
        if not isinstance(button, str) or not 0 < len(button) <= LIST_BUTTON_MAX:
            raise ContentRequestError(f"types.{kind}.button is required, at most {LIST_BUTTON_MAX} characters")
        items = _entries(spec, "items", ("id", "item"), limit=LIST_MAX_ITEMS)
        for item in items:
            if len(item["item"]) > LIST_ITEM_MAX or len(item.get("description") or "") > LIST_DESCRIPTION_MAX:
                raise ContentRequestError(
                    f"list items hold at most {LIST_ITEM_MAX} characters ({LIST_DESCRIPTION_MAX} in a description)"
                )
        return ContentTemplate(sid=sid, name=name, body=spec["body"], content_type=kind, list_button=button,
                               buttons=tuple(Choice(i["id"], i["item"]) for i in items))
    raise ContentRequestError(f"the simulator does not model {kind} content")


def _entries(spec: dict[str, Any], field: str, required: tuple[str, ...], *, limit: int) -> list[dict[str, str]]:
    entries = spec.get(field)
    if not isinstance(entries, list) or not 0 < len(entries) <= limit:
        raise ContentRequestError(f"{field}: 1 to {limit} entries")
    for entry in entries:
        if not isinstance(entry, dict) or any(not isinstance(entry.get(k), str) or not entry[k] for k in required):
            raise ContentRequestError(f"each of {field} needs {', '.join(required)}")
    return entries


def create_content_router(sim: Simulator) -> APIRouter:
    """``/v1/Content`` and its WhatsApp approval requests for ``sim``'s account."""
    router = APIRouter()
    # ``sim`` may stand for the current simulator (a shared app): read its parts per request.

    def resource(template: ContentTemplate, variables: dict[str, str]) -> dict[str, Any]:
        types: dict[str, Any] = {"body": template.body}
        if template.list_button is not None:
            types.update(button=template.list_button,
                         items=[{"id": b.payload, "item": b.title, "description": ""} for b in template.buttons])
        elif template.buttons:
            types["actions"] = [{"id": b.payload, "title": b.title, "type": "QUICK_REPLY"} for b in template.buttons]
        url = f"{_BASE}/{template.sid}"
        return {"sid": template.sid, "account_sid": sim.account_sid, "friendly_name": template.name,
                "language": "en", "variables": variables, "types": {template.content_type: types},
                "date_created": None, "date_updated": None, "url": url,
                "links": {"approval_create": f"{url}/ApprovalRequests/whatsapp",
                          "approval_fetch": f"{url}/ApprovalRequests"}}

    def approval(template: ContentTemplate) -> dict[str, Any]:
        status = sim.account.approvals.get(template.sid, "approved")
        return {"name": template.name, "category": "UTILITY", "content_type": template.content_type,
                "status": status, "rejection_reason": "", "allow_category_change": True}

    @router.post("/v1/Content")
    async def create_content(request: Request) -> Response:
        if (denied := _authenticate(sim, request, sim.account_sid)) is not None:
            return denied
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ContentRequestError("the body must be a JSON object")
            template = content_template(sim.new_sid("HX"), body)
        except (ValueError, ContentRequestError) as exc:
            return _error(TwilioApiError(20001, str(exc)))
        sim.register_template(template)
        sim.account.approvals[template.sid] = "unsubmitted"  # usable in session; not approved for WhatsApp yet
        variables = body.get("variables")
        variables = {str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict) else {}
        return JSONResponse(resource(template, variables), status_code=201)

    def known(request: Request, sid: str) -> ContentTemplate | Response:
        """The content ``sid`` names, or the answer to give (401, 404)."""
        denied = _authenticate(sim, request, sim.account_sid)
        return denied or sim.templates.get(sid) or _not_found(request)

    @router.post("/v1/Content/{sid}/ApprovalRequests/whatsapp")
    async def request_approval(request: Request, sid: str) -> Response:
        template = known(request, sid)
        if isinstance(template, Response):
            return template
        sim.account.approvals[sid] = "approved"  # the simulator's reviewer is quick
        return JSONResponse({**approval(template), "status": "received"}, status_code=201)

    @router.get("/v1/Content/{sid}/ApprovalRequests")
    async def fetch_approval(request: Request, sid: str) -> Response:
        template = known(request, sid)
        if isinstance(template, Response):
            return template
        return JSONResponse({"sid": sid, "account_sid": sim.account_sid, "whatsapp": approval(template),
                             "url": f"{_BASE}/{sid}/ApprovalRequests"})

    return router

"""Twilio's Messages REST API, served locally by the simulator.

Paths, auth, status codes and JSON bodies follow Twilio (checked against the
official OpenAPI spec by ``tests/devtools/simulator/test_contract.py``), so the
official ``twilio`` SDK works unchanged once ``client.api.base_url`` points
here:

- ``POST   /2010-04-01/Accounts/{AccountSid}/Messages.json``       → 201 Message
- ``GET    /2010-04-01/Accounts/{AccountSid}/Messages.json``       → 200 page
- ``GET    /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`` → 200 / 404
- ``DELETE /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json`` → 204 / 404

Errors use Twilio's body: ``{"code", "message", "more_info", "status"}``.

Example::

    sim = Simulator(account_sid=sid, auth_token=token)
    app = create_simulator_app(sim)            # its own server, like api.twilio.com
    # or, inside a bigger app: app.include_router(create_simulator_router(sim))
    client = Client(sid, token)
    client.api.base_url = "http://127.0.0.1:8010"
    client.messages.create(to="+14155550123", from_="+15005550006", body="Hi")
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from devtools.simulator.errors import TwilioApiError
from devtools.simulator.message import SimMessage
from devtools.simulator.request import CreateMessageRequest
from devtools.simulator.rules import API_VERSION
from devtools.simulator.state import Simulator

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def create_simulator_router(sim: Simulator) -> APIRouter:
    """The Messages endpoints at Twilio's paths, bound to ``sim``.

    Include it in an app that also maps stray 404/405s to Twilio's error
    body, or use :func:`create_simulator_app`, which does.

    Example::

        app.include_router(create_simulator_router(sim))
    """
    router = APIRouter()
    account = f"/{API_VERSION}/Accounts/{{account_sid}}"

    @router.post(account + "/Messages.json", status_code=201)
    async def create_message(request: Request, account_sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        form = await request.form()
        try:
            message = await sim.create_message(CreateMessageRequest.from_pairs(form.multi_items()))
        except TwilioApiError as exc:
            return _error(exc)
        return JSONResponse(message.resource(), status_code=201)

    @router.get(account + "/Messages.json")
    async def list_messages(request: Request, account_sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        try:
            return JSONResponse(_page(sim, request, account_sid))
        except TwilioApiError as exc:
            return _error(exc)

    @router.get(account + "/Messages/{sid}.json")
    async def fetch_message(request: Request, account_sid: str, sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        message = sim.get_message(sid)
        if message is None or message.account_sid != account_sid:
            return _not_found(request)
        return JSONResponse(message.resource())

    @router.delete(account + "/Messages/{sid}.json", status_code=204)
    async def delete_message(request: Request, account_sid: str, sid: str) -> Response:
        if (denied := _authenticate(sim, request, account_sid)) is not None:
            return denied
        if not sim.delete_message(sid):
            return _not_found(request)
        return Response(status_code=204)

    # Imported here: the account endpoints reuse this module's auth and error helpers.
    from devtools.simulator.account_api import create_account_router

    router.include_router(create_account_router(sim))
    from devtools.simulator.content_api import create_content_router

    router.include_router(create_content_router(sim))
    return router


def create_simulator_app(sim: Simulator, *, close_on_shutdown: bool = True) -> FastAPI:
    """A standalone app serving ``sim`` like ``api.twilio.com``.

    Unknown paths and methods answer with Twilio's error body (20404, 20004).
    With ``close_on_shutdown`` the app closes ``sim`` when it stops, which
    must happen on the loop that ran its callbacks.

    Example::

        uvicorn.run(create_simulator_app(sim), host="127.0.0.1", port=8010)
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if close_on_shutdown:
            await sim.aclose()

    # No docs pages: the surface should be Twilio's and nothing else.
    app = FastAPI(title="Twilio simulator", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.include_router(create_simulator_router(sim))
    # Imported here: the Calls module builds on this one's helpers.
    from devtools.simulator.calls_api import create_calls_router

    app.include_router(create_calls_router(sim))

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, StarletteHTTPException) else 500
        if status == 404:
            return _not_found(request)
        if status == 405:
            return _error(TwilioApiError(20004, "Method not allowed", 405))
        return _error(TwilioApiError(20001 if status < 500 else 20500, str(exc), status))

    app.add_exception_handler(StarletteHTTPException, http_error)
    return app


def _authenticate(sim: Simulator, request: Request, account_sid: str) -> Response | None:
    """Basic auth as Twilio checks it: AccountSid and AuthToken, constant time."""
    username, password = basic_credentials(request.headers.get("authorization", ""))
    # Compare both halves even when the first fails, so timing says nothing.
    good_user = secrets.compare_digest(username.encode(), sim.account_sid.encode())
    good_token = secrets.compare_digest(password.encode(), sim.auth_token.encode())
    if not (good_user and good_token):
        response = _error(TwilioApiError(20003, "Authenticate", 401))
        response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
        return response
    if account_sid != sim.account_sid:
        # Valid credentials, someone else's account: Twilio hides it (20404).
        return _not_found(request)
    return None


def basic_credentials(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    username, _, password = decoded.partition(":")
    return username, password


def _error(exc: TwilioApiError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status)


def _not_found(request: Request) -> JSONResponse:
    return _error(TwilioApiError(20404, f"The requested resource {request.url.path} was not found", 404))


def _page(sim: Simulator, request: Request, account_sid: str) -> dict[str, Any]:
    """One page of the list, newest first, in Twilio's envelope."""
    query = request.query_params
    page_size = min(max(_int(query.get("PageSize"), DEFAULT_PAGE_SIZE), 1), MAX_PAGE_SIZE)
    page = max(_int(query.get("Page"), 0), 0)
    filters = {key: query[key] for key in ("To", "From", "DateSent", "DateSent<", "DateSent>") if query.get(key)}
    matching = [m for m in reversed(sim.messages()) if m.account_sid == account_sid and _matches(m, filters)]

    start = page * page_size
    # The token names the last message of the previous page, so pages stay
    # stable while new messages arrive (they are added at the front).
    token = query.get("PageToken", "")
    offset = start
    if token.startswith("PA"):
        after = next((i for i, m in enumerate(matching) if m.sid == token[2:]), None)
        if after is not None:
            offset = after + 1
    items = matching[offset : offset + page_size]

    path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"

    def uri(page_number: int, page_token: str | None = None) -> str:
        params = [*filters.items(), ("PageSize", str(page_size)), ("Page", str(page_number))]
        if page_token:
            params.append(("PageToken", page_token))
        return f"{path}?{urlencode(params)}"

    has_more = offset + page_size < len(matching)
    return {
        "messages": [m.resource() for m in items],
        "end": start + max(len(items) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1, f"PA{items[-1].sid}") if has_more and items else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": uri(page, token or None),
    }


def _matches(message: SimMessage, filters: dict[str, str]) -> bool:
    if "To" in filters and message.to != filters["To"]:
        return False
    if "From" in filters and message.from_ != filters["From"]:
        return False
    for key, compare in (("DateSent", 0), ("DateSent<", -1), ("DateSent>", 1)):
        if key not in filters:
            continue
        if message.date_sent is None:
            return False
        bound = _moment(filters[key], key)
        sent: date | datetime = message.date_sent if isinstance(bound, datetime) else message.date_sent.date()
        if compare == 0 and sent != bound:
            return False
        if compare < 0 and sent > bound:
            return False
        if compare > 0 and sent < bound:
            return False
    return True


def _moment(value: str, name: str) -> date | datetime:
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise TwilioApiError(20001, f"Invalid value for {name}: {value}") from None
    # A bare time is read as UTC, the zone Twilio's dates are in.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default

"""The two baseline servers the project is measured against, as uvicorn factories.

Both read the same environment as the project (``TWILIO_AUTH_TOKEN``,
``PUBLIC_BASE_URL``) and answer ``POST /twilio/messages``, so one load
script drives all three with the same signed payloads:

- :func:`bare`: parse the form, answer a constant TwiML string. The ceiling
  of the stack (uvicorn + FastAPI + form parsing) on this machine.
- :func:`tutorial`: what most tutorials show: the official SDK's
  ``RequestValidator`` on the form, then a ``MessagingResponse`` echo. No
  state, no intents, no exactly-once.

The project itself runs as ``webhooks.app:app_from_env`` (unchanged), with
``TWILIO_API_BASE_URL`` pointing at :func:`simulator`: the project's local
Twilio API, so the REST calls the bot makes (WhatsApp buttons, late replies)
stay on this machine. The simulator's status callbacks are absorbed in its
own process (they would otherwise go to ``PUBLIC_BASE_URL``).

Example::

    TWILIO_AUTH_TOKEN=t PUBLIC_BASE_URL=https://bot.example.com \\
        .venv/bin/python -m uvicorn bench.apps:tutorial --factory --port 8001
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request, Response
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

PATH = "/twilio/messages"
CONSTANT_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Hi!</Message></Response>'


def _app() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def bare() -> FastAPI:
    """A FastAPI endpoint that parses the form and returns constant TwiML."""
    app = _app()

    @app.post(PATH)
    async def inbound(request: Request) -> Response:
        await request.form()
        return Response(CONSTANT_TWIML, media_type="text/xml")

    return app


def tutorial() -> FastAPI:
    """The tutorial handler: validate the signature with the SDK, echo with MessagingResponse."""
    app = _app()
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    public = os.environ.get("PUBLIC_BASE_URL", "").rstrip("/")

    @app.post(PATH)
    async def inbound(request: Request) -> Response:
        form = await request.form()
        # Behind a proxy the tutorial must sign over the public URL, like the project.
        url = public + request.url.path if public else str(request.url)
        if not validator.validate(url, form, request.headers.get("X-Twilio-Signature", "")):
            raise HTTPException(status_code=403, detail="invalid signature")
        reply = MessagingResponse()
        reply.message(f"You said: {form.get('Body', '')}")
        return Response(str(reply), media_type="text/xml")

    return app


def build_simulator(account_sid: str, auth_token: str) -> tuple[Any, FastAPI]:
    """The project's Twilio simulator with the bot's content templates; callbacks absorbed."""
    from bot.outbound.templates import ContentTemplates
    from devtools.simulator import Simulator, create_simulator_app
    from devtools.simulator.content import register_content_templates

    # Status callbacks (and any other simulator HTTP) never leave the process.
    absorb = httpx.AsyncClient(transport=httpx.MockTransport(lambda request: httpx.Response(204)))
    sim = Simulator(account_sid=account_sid, auth_token=auth_token, http_client=absorb)
    registry = Path(os.environ.get("INTENTS_DIR", "intents")) / "templates.yaml"
    if registry.exists():
        register_content_templates(sim, ContentTemplates.load(registry))
    app = create_simulator_app(sim)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return sim, app


def simulator() -> FastAPI:
    """The local Twilio API for the project server (``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``)."""
    _, app = build_simulator(os.environ["TWILIO_ACCOUNT_SID"], os.environ["TWILIO_AUTH_TOKEN"])
    return app

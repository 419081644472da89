"""``bot dev``: the bot, a local Twilio and a browser dev phone on one port.

:func:`create_dev_app` builds the production app (:func:`webhooks.app.create_app`)
with development settings and adds, on the same server:

- the simulated Twilio Messages API at Twilio's paths (``/2010-04-01/...``):
  the bot's REST calls through the official SDK land there, since
  ``TWILIO_API_BASE_URL`` points at this server;
- the dev phone (``/dev/``): phones text the bot through signed webhooks to
  this server's ``/twilio/messages``, exactly as Twilio would;
- the conversation view (``/dev/conversations``): each turn's intent, slots,
  flow and step, and the stored state.

None of it exists under ``bot serve``: only this module mounts it.

Example::

    app = create_dev_app(dev_settings(), base_url="http://127.0.0.1:8000")
    uvicorn.run(app, host="127.0.0.1", port=8000)
    # or simply: bot dev --port 8000
"""

from __future__ import annotations

import threading
import webbrowser
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import typer
from fastapi import FastAPI
from pydantic import SecretStr

from bot.clock import Clock, FrozenClock
from bot.outbound.broadcast import QueueReport, Recipient, queue_broadcast
from bot.outbound.outbox import InlineOutbox
from bot.runtime import Runtime
from bot.settings import Settings
from bot.storage import ConversationStore
from devtools.simulator import ContentTemplate, SimulatorConfig, create_simulator_router
from devtools.simulator.content import register_content_templates
from devtools.simulator.devphone import DevPhone, DevSimulator, TurnLog, install_devphone
from devtools.simulator.devphone.clock import DevClock
from devtools.simulator.devphone.schedule import DEV_BROADCAST_RATE, SchedulePanel, create_schedule_router
from devtools.simulator.devphone.staff import create_staff_router
from devtools.simulator.sendgrid import LocalSendGrid, create_sendgrid_router
from devtools.simulator.verify import LocalVerify, create_verify_router
from webhooks.app import create_app

#: Development defaults: staff email and Verify work out of the box against the local services.
DEV_STAFF_EMAIL = "staff@clinic.test"
DEV_EMAIL_FROM = "bot@clinic.test"
DEV_SENDGRID_KEY = "SG.dev-key"  # a public development default, not a secret
DEV_VERIFY_SERVICE_SID = "VA" + "0" * 32


def create_dev_app(
    settings: Settings,
    *,
    base_url: str = "http://127.0.0.1:8000",
    bot_number: str | None = None,
    store: ConversationStore | None = None,
    clock: Clock | None = None,
    chat_model: Any = None,
    templates: Iterable[ContentTemplate] = (),
    step_delay: float = 0.3,
    turns_per_conversation: int = 50,
) -> FastAPI:
    """The bot app plus the simulator, dev phone and conversation view, all at ``base_url``.

    ``base_url`` is where this app will be served (it calls itself there: the
    bot's REST API base, the webhook URL and the signed public URL).
    ``bot_number`` is the number the phones text (default: the dev tools'
    ``DEV_BOT_NUMBER``, Twilio's magic valid sender). ``settings`` are used with
    ``environment=development``; the store is the
    in-memory one unless ``REDIS_URL`` is set (or ``store`` is given).
    The simulator knows the bot's content templates (its registry, from
    ``intents/templates.yaml``) plus ``templates``. ``step_delay`` is the pause between status steps
    (queued, sent, delivered, read), slow enough to watch the ticks.

    Example::

        app = create_dev_app(settings, base_url="http://127.0.0.1:8123", clock=FrozenClock(start))
        with run_app(app, port=8123) as url:
            ...   # open url + "/dev/"
    """
    from bot.cli import DEV_BOT_NUMBER  # the dev tools' defaults live with the CLI

    base = base_url.rstrip("/")
    # Staff email and Verify go to the local SendGrid and Verify on this server; the
    # development defaults turn both on unless the environment configured them.
    dev_mail = {
        "staff_email": settings.staff_email or DEV_STAFF_EMAIL,
        "email_from": settings.email_from or DEV_EMAIL_FROM,
        "sendgrid_api_key": settings.sendgrid_api_key or SecretStr(DEV_SENDGRID_KEY),
        "twilio_verify_service_sid": settings.twilio_verify_service_sid or DEV_VERIFY_SERVICE_SID,
    }
    settings = settings.model_copy(
        update={"environment": "development", "twilio_api_base_url": base, "public_base_url": base,
                "sendgrid_api_base_url": base, **dev_mail}
    )
    # One clock for the bot and the simulator, which the dev phone's Clock panel moves.
    clock = clock if clock is not None else DevClock()
    app = create_app(settings, store=store, clock=clock, chat_model=chat_model)
    services = app.state.services

    sim = DevSimulator.from_settings(
        settings,
        webhook_url=f"{base}/twilio/messages",
        config=SimulatorConfig(step_delay=step_delay),
        templates=templates,
        clock=clock,
    )
    assert isinstance(sim, DevSimulator)  # from_settings builds ``cls``
    outbound = services.require_outbound()
    # The bot's own registry (intents/templates.yaml, loaded and checked once
    # at start-up): the phone renders exactly what the bot sends.
    register_content_templates(sim, outbound.templates)
    bot = bot_number or DEV_BOT_NUMBER
    if settings.twilio_messaging_service_sid:
        # Sends "from" the configured Messaging Service come from the phones' bot number.
        sim.register_messaging_service(settings.twilio_messaging_service_sid, [bot])
    staff = settings.staff_number or (services.business.phone_e164 if services.business is not None else None)
    phone = DevPhone(sim, bot=bot, base_url=base, delivery_state=outbound.tracker.state, staff_number=staff)
    turn_log = TurnLog(turns_per_conversation=turns_per_conversation)
    services.engine.observers.append(turn_log.observe)

    app.title = "SMS & WhatsApp bot (dev)"
    app.include_router(create_simulator_router(sim))
    assert settings.sendgrid_api_key is not None
    sendgrid = LocalSendGrid(api_key=settings.sendgrid_api_key.get_secret_value())
    verify = LocalVerify(account_sid=settings.twilio_account_sid,
                         auth_token=settings.twilio_auth_token.get_secret_value(),
                         clock=clock)
    app.include_router(create_sendgrid_router(sendgrid))
    app.include_router(create_verify_router(verify))
    app.include_router(create_staff_router(sendgrid, verify))
    app.state.sendgrid = sendgrid
    app.state.verify = verify
    install_devphone(app, phone, turn_log, services.store, clock=clock)
    app.include_router(create_schedule_router(_schedule_panel(services, clock, bot)))
    app.state.simulator = sim
    app.state.devphone = phone
    app.state.turn_log = turn_log

    bot_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with bot_lifespan(app):  # the bot's lifespan keeps no lifespan state
            phone.start()
            try:
                yield
            finally:
                # Pending status callbacks target the bot: stop them before it closes.
                await phone.aclose()
                await sim.aclose()

    app.router.lifespan_context = lifespan
    return app


def _schedule_panel(services: Runtime, clock: Clock, bot: str) -> SchedulePanel:
    """The Clock panel's parts: the clock, the quiet-hours gate's held list, the in-process outbox."""
    outbound = services.require_outbound()
    gate = outbound.sender.quiet
    outbox = outbound.outbox

    async def broadcast(recipients: Sequence[Recipient], template: str, campaign: str) -> QueueReport:
        return await queue_broadcast(outbound, recipients, template=template, campaign=campaign,
                                     rate=DEV_BROADCAST_RATE, bot=bot)

    return SchedulePanel(
        clock=clock,
        # A system clock the caller gave cannot be moved; the dev and frozen clocks can.
        advance=clock.advance if isinstance(clock, (DevClock, FrozenClock)) else None,
        held=gate.held if gate is not None else None,
        release_due=outbox.release_due if isinstance(outbox, InlineOutbox) else None,
        broadcast=broadcast,
        jobs=services.jobs,
        bot=bot,
        business_tz=services.business.tz if services.business is not None else ZoneInfo("UTC"),
    )


def dev(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    """Run :func:`create_dev_app` under uvicorn and print the URL to open.

    Example::

        dev(port=8000)   # Dev phone: http://127.0.0.1:8000/dev/
    """
    import uvicorn

    from bot.cli import DEV_BOT_NUMBER, dev_settings
    from bot.observability import configure_logging

    settings = dev_settings()
    configure_logging(settings.log_level, json_logs=settings.log_json)
    # The app calls itself (webhooks, REST): on a wildcard bind, through loopback.
    url_host = "127.0.0.1" if host in {"", "0.0.0.0"} else ("[::1]" if host == "::" else host)
    if ":" in url_host and not url_host.startswith("["):
        url_host = f"[{url_host}]"
    base = f"http://{url_host}:{port}"
    app = create_dev_app(settings, base_url=base)
    phone_url = f"{base}/dev/"
    typer.echo(f"Dev phone: {phone_url}")
    typer.echo(f"Conversations: {base}/dev/conversations")
    typer.echo(f"Simulated Twilio API: {base}/2010-04-01 (the bot texts from {DEV_BOT_NUMBER})")
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(phone_url,)).start()
    # A short graceful shutdown: open dev-phone tabs hold live (SSE) connections.
    uvicorn.run(app, host=host, port=port, access_log=False, timeout_graceful_shutdown=3)


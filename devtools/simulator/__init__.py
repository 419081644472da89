"""A local, Twilio-compatible Messaging API for development and tests.

Only ``bot dev`` and the test suite use this package; ``bot serve`` never
imports it. It plays Twilio's part in both directions:

- **outbound**: the bot (or the official ``twilio`` SDK pointed at it) creates
  messages at Twilio's paths (:mod:`devtools.simulator.api`) and gets Twilio's
  answers: 201 bodies shaped like the Message resource, the magic test
  numbers, 21610 for opted-out recipients, 63016 outside WhatsApp's 24 h
  window, signed status callbacks in Twilio's order, injected failures;
- **inbound**: the simulated phone texts the bot with signed webhooks
  (:func:`devtools.simulator.inbound.send_inbound`) and records the TwiML answer as
  messages delivered to the phone.

Everything lives in one :class:`~devtools.simulator.state.Simulator` object (no
module-level state); a dev-phone page subscribes to its events.

Example::

    sim = Simulator(account_sid=sid, auth_token=token,
                    webhook_url="http://127.0.0.1:8000/twilio/messages")
    app = create_simulator_app(sim)          # serve it, or include the router
    result = await send_inbound(sim, user="+14155550123", bot="+15005550006", body="hi")
    result.replies[0].body                   # what the bot answered
"""

from __future__ import annotations

from devtools.simulator.api import create_simulator_app, create_simulator_router
from devtools.simulator.config import SimulatorConfig
from devtools.simulator.errors import TwilioApiError
from devtools.simulator.events import EventKind, SimulatorEvent, Subscription
from devtools.simulator.failures import FailureRule, Outcome
from devtools.simulator.inbound import InboundResult, build_inbound_form, send_inbound
from devtools.simulator.message import MessageOrigin, SimMessage
from devtools.simulator.request import CreateMessageRequest
from devtools.simulator.state import Simulator
from devtools.simulator.templates import ContentTemplate

__all__ = [
    "ContentTemplate",
    "CreateMessageRequest",
    "EventKind",
    "FailureRule",
    "InboundResult",
    "MessageOrigin",
    "Outcome",
    "SimMessage",
    "Simulator",
    "SimulatorConfig",
    "SimulatorEvent",
    "Subscription",
    "TwilioApiError",
    "build_inbound_form",
    "create_simulator_app",
    "create_simulator_router",
    "send_inbound",
]

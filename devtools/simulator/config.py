"""The simulator's behaviour switches (``SimulatorConfig``); the defaults behave like Twilio.

Example::

    Simulator(account_sid=sid, auth_token=token, config=SimulatorConfig(step_delay=0))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot.messages import Channel
from devtools.simulator.rules import DEFAULT_KEYWORD_REPLIES


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """Behaviour switches; the defaults behave like Twilio.

    - ``step_delay``: seconds between status steps (tests use 0).
    - ``window_errors``: where 63016 shows. Twilio accepts the request (201)
      and fails the message in its status callback (``"callback"``, as in
      example-payloads.json's ``status_whatsapp_failed_63016``); ``"reject"``
      answers 400 with 63016 instead, for code that wants it synchronous.
    - ``twilio_keyword_replies``: Twilio answers STOP/START/HELP itself on SMS
      (``Settings.sms_keyword_replies == "twilio"``).
    - ``keyword_channels``: where Twilio's keyword filter runs (SMS only, as on
      Twilio; WhatsApp users block in the app, and the bot must stop itself).
    - ``advanced_opt_out``: add ``OptOutType`` to inbound webhooks, as a
      Messaging Service with Advanced Opt-Out does.
    - ``whatsapp_read``: WhatsApp messages go on to ``read`` after delivery.
    """

    step_delay: float = 0.05
    window_errors: Literal["callback", "reject"] = "callback"
    twilio_keyword_replies: bool = True
    keyword_channels: frozenset[Channel] = frozenset({Channel.SMS})
    keyword_reply_texts: Mapping[str, str] = field(default_factory=lambda: DEFAULT_KEYWORD_REPLIES)
    advanced_opt_out: bool = False
    whatsapp_read: bool = True
    default_status_callback: str | None = None
    webhook_timeout: float = 15.0  # Twilio gives up after 15 s (11200)
    max_messages: int = 10_000
    subscriber_queue_size: int = 1000

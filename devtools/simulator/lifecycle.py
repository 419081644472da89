"""Each message's status lifecycle, played like Twilio: ``queued → sent → delivered (→ read)`` or a failure.

A message the simulator accepted moves through Twilio's statuses in the
simulator's event loop, one step every ``SimulatorConfig.step_delay`` seconds;
an injected :class:`~devtools.simulator.failures.FailureRule` (or WhatsApp's
closed window) ends it ``failed`` or ``undelivered`` with Twilio's code. Each
status is POSTed, signed, to the message's StatusCallback with the fields
Twilio sends (:func:`status_callback_params`).

Example::

    start_lifecycle(sim, message)            # what Simulator.start_lifecycle does
    await sim.drain()                        # every step and callback done
    sim.get_message(message.sid).status      # "delivered"
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import TYPE_CHECKING, Any

import httpx

from bot.clock import Clock
from bot.messages import Channel
from devtools.simulator.events import EventKind
from devtools.simulator.failures import Outcome
from devtools.simulator.message import SimMessage
from devtools.simulator.rules import API_VERSION

if TYPE_CHECKING:
    from devtools.simulator.state import Simulator

log = logging.getLogger(__name__)


def start_lifecycle(sim: Simulator, message: SimMessage, outcome: Outcome | None = None) -> None:
    """Play ``queued → sent → delivered (→ read)`` or an injected failure, in ``sim``'s event loop."""
    if outcome is None:
        outcome = _injected_failure(sim, message)
    steps: list[tuple[str, int | None]] = [(message.status, None)]
    if outcome is not None and outcome.status == "failed":
        steps.append(("failed", outcome.error_code))
    elif outcome is not None:
        steps += [("sent", None), ("undelivered", outcome.error_code)]
    else:
        steps += [("sent", None), ("delivered", None)]
        if message.channel is Channel.WHATSAPP and sim.config.whatsapp_read:
            steps.append(("read", None))
    sim.spawn(_run_lifecycle(sim, message.sid, steps))

def _injected_failure(sim: Simulator, message: SimMessage) -> Outcome | None:
    for rule in sim.failures:
        if rule.matches(message) and (rule.rate >= 1.0 or sim.random() < rule.rate):
            return Outcome(rule.status, rule.error_code)
    return None

async def _run_lifecycle(sim: Simulator, sid: str, steps: list[tuple[str, int | None]]) -> None:
    for status, error_code in steps:
        # Sleeping even at 0 yields, so the 201 is on its way before the
        # first callback, as with Twilio (which still races, see FACTS.md).
        await asyncio.sleep(sim.config.step_delay)
        message = sim.set_status(sid, status, error_code)
        if message is None:
            return  # deleted meanwhile
        if message.status_callback:
            await _post_status_callback(sim, message)

def status_callback_params(message: SimMessage, clock: Clock) -> dict[str, str]:
    """The form Twilio POSTs to a StatusCallback for ``message``'s status now (``clock``: the simulator's)."""
    params = {
        "SmsSid": message.sid,
        "SmsStatus": message.status,
        "MessageStatus": message.status,
        "To": message.to,
        "MessageSid": message.sid,
        "AccountSid": message.account_sid,
        "From": message.from_ or "",
        "ApiVersion": API_VERSION,
    }
    if message.messaging_service_sid:
        params["MessagingServiceSid"] = message.messaging_service_sid
    if message.error_code is not None and message.status in {"failed", "undelivered"}:
        params["ErrorCode"] = str(message.error_code)
    if message.channel is Channel.WHATSAPP:
        params["ChannelPrefix"] = message.channel.value
        params["ChannelToAddress"] = message.user
        if message.status == "read":
            params["EventType"] = "READ"
        if message.status in {"failed", "undelivered"}:
            # Captures show the sender's channel install on failures only.
            digest = hashlib.sha256((message.bot or "").encode()).hexdigest()
            params["ChannelInstallSid"] = "XE" + digest[:32]
    elif message.status == "delivered":
        params["RawDlrDoneDate"] = clock.now().strftime("%y%m%d%H%M")
    return params

async def _post_status_callback(sim: Simulator, message: SimMessage) -> None:
    url = message.status_callback or ""
    params = status_callback_params(message, sim.clock)
    data: dict[str, Any] = {"url": url, "status": message.status}
    try:
        response = await sim.post_signed(url, params)
        data["status_code"] = response.status_code
    except httpx.HTTPError as exc:
        # Twilio does not retry status callbacks; it logs and moves on.
        log.warning("status callback to %s failed: %s", url, exc)
        data["error"] = str(exc)
    sim.emit(EventKind.CALLBACK_SENT, message, data)

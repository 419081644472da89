"""Replaying what the bot starts on its own: ``broadcast:`` steps and the messages quiet hours hold.

A ``broadcast:`` step queues ``bot broadcast`` of one content template to the
transcript's texter through the app's own outbound parts
(:func:`~bot.outbound.broadcast.queue_broadcast`); the quiet-hours gate then
sends it or holds it, exactly as for a real campaign. :func:`held_now` lists
what the gate holds for the conversation, so a step can report what it held
(``expect: {held: "08:00"}``) and ``advance`` can show what the clock released.

Example::

    before = await held_now(runtime, key)
    await queue_broadcast_step(runtime, step, key)
    new = [until for ref, until in (await held_now(runtime, key)).items() if ref not in before]
"""

from __future__ import annotations

import uuid

from bot.outbound.broadcast import Recipient, queue_broadcast
from bot.runtime import Runtime
from bot.storage.base import ConversationKey
from devtools.replay.steps import BroadcastStep

#: Replay does not wait for a pacer: one recipient goes at once.
REPLAY_BROADCAST_RATE = 100.0


async def held_now(runtime: Runtime, key: ConversationKey) -> dict[str, str]:
    """The messages held for ``key`` now: ref -> ``until 08:00 America/New_York (Tue Mar 3)``."""
    gate = runtime.outbound.sender.quiet
    if gate is None:
        return {}
    return {message.ref: message.until() for message in await gate.held(key)}


async def queue_broadcast_step(runtime: Runtime, step: BroadcastStep, key: ConversationKey) -> None:
    """Queue the step's broadcast to the conversation's texter (a campaign of its own each time)."""
    recipient = Recipient(key.channel, key.user, dict(step.variables), step.line)
    # Unique per run: replaying again against the same Redis is a new campaign, not "already sent".
    campaign = f"replay-{step.template}-{uuid.uuid4().hex[:10]}"
    await queue_broadcast(runtime.outbound, [recipient], template=step.template, campaign=campaign,
                          rate=REPLAY_BROADCAST_RATE, bot=key.bot)

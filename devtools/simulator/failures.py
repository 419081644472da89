"""Failures to inject, and how a message's lifecycle ends when it does not end well.

Example::

    sim.inject_failure(FailureRule(to="+14155550100", error_code=30003))
    Outcome("failed", 21610)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.messages import Channel
from devtools.simulator.message import SimMessage


@dataclass(frozen=True, slots=True)
class FailureRule:
    """Make matching messages fail in their status callbacks.

    ``to`` matches the recipient's bare number (``None``: everyone);
    ``rate`` is the chance a matching message fails, drawn from the
    simulator's seeded RNG. ``failed`` ends right after ``queued`` (never
    sent); ``undelivered`` goes ``queued → sent → undelivered`` like a carrier
    rejection (30003 and friends).

    >>> FailureRule(to="+14155550100", error_code=30003).status
    'undelivered'
    """

    error_code: int = 30003
    status: Literal["failed", "undelivered"] = "undelivered"
    to: str | None = None
    channel: Channel | None = None
    rate: float = 1.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")

    def matches(self, message: SimMessage) -> bool:
        """Whether this rule applies to ``message`` (before the dice roll)."""
        if self.channel is not None and message.channel is not self.channel:
            return False
        return self.to is None or Channel.from_address(self.to)[1] == message.user




@dataclass(frozen=True, slots=True)
class Outcome:
    """How a message's lifecycle ends when it does not end well.

    >>> Outcome("failed", 21610)
    Outcome(status='failed', error_code=21610)
    """

    status: Literal["failed", "undelivered"]
    error_code: int

"""Replay's own error: a step replay cannot perform (not a bot failure).

Example::

    raise ReplayError("advance needs a frozen clock")
"""

from __future__ import annotations

from bot.errors import BotError


class ReplayError(BotError):
    """Replay itself could not do what a step asks (not a bot failure)."""

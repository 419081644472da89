"""Where replayed conversations happen: the bot's number, the frozen start, the URLs, the settings.

Example::

    settings = replay_settings(redis_url=None)   # force the memory store
    FrozenClock(DEFAULT_NOW)
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from typing import Any

from bot.cli import dev_credentials
from bot.settings import Settings, load_settings

#: The bot's number in replayed conversations (Twilio's "valid sender" test number).
BOT_NUMBER = "+15005550006"
#: Where the frozen clock starts when a transcript has no ``now:`` (a Monday, 9am in New York).
DEFAULT_NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone(timedelta(hours=-5)))
#: The URL the in-process app believes Twilio calls; webhooks are signed over it.
PUBLIC_URL = "https://replay.bot.test"
#: The Twilio REST API base the in-process app's client uses (served in-process).
TWILIO_API_URL = "https://api.twilio.replay.test"
DEFAULT_CONCURRENCY = 8

MESSAGES_PATH = "/twilio/messages"
STATUS_PATH = "/twilio/status"


def replay_settings(**overrides: Any) -> Settings:
    """Settings for replay: the environment and ``.env``, with development credentials when unset.

    Example::

        settings = replay_settings(redis_url=None)   # force the memory store
    """
    values: dict[str, Any] = {}
    if not os.environ.get("ENVIRONMENT"):
        # A dev tool: production's rules (REDIS_URL required) only when asked for.
        values["environment"] = "development"
    return load_settings(**{**values, **dev_credentials(), **overrides})

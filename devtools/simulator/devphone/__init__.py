"""The browser dev phone and the conversation view (``bot dev`` only).

- :mod:`~devtools.simulator.devphone.phone`: what the page can do (send as a phone,
  inject failures) and its live feed;
- :mod:`~devtools.simulator.devphone.turns`: the engine observer behind the
  conversation view;
- :mod:`~devtools.simulator.devphone.router`: the pages and their JSON/SSE API;
- ``static/``: the page itself (vanilla JS, no build step, works offline).

Example::

    phone = DevPhone(sim, bot="+15005550006", base_url="http://127.0.0.1:8000")
    turn_log = TurnLog()
    runtime.engine.observers.append(turn_log.observe)
    install_devphone(app, phone, turn_log, runtime.store)
"""

from __future__ import annotations

from devtools.simulator.devphone.phone import DevPhone, DevSimulator, Feed, PhoneError
from devtools.simulator.devphone.router import create_devphone_router, install_devphone
from devtools.simulator.devphone.turns import ConversationSummary, TurnLog, TurnRecord

__all__ = [
    "ConversationSummary",
    "DevPhone",
    "DevSimulator",
    "Feed",
    "PhoneError",
    "TurnLog",
    "TurnRecord",
    "create_devphone_router",
    "install_devphone",
]

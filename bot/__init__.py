"""A conversational SMS and WhatsApp bot server on Twilio.

The engine lives here; ``webhooks`` adapts it to HTTP. Start with
``bot dev`` (local simulator) or ``bot serve`` (production).
"""

from __future__ import annotations

__version__ = "0.1.0"

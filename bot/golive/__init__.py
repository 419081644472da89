"""Going live: point a Twilio number at the bot (``bot connect``) and check the setup (``bot doctor``).

Both talk to Twilio through the official SDK, so they work unchanged against
the local simulator (``TWILIO_API_BASE_URL``), which is how they are tested.
"""

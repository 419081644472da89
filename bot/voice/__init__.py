"""Voice calls below HTTP: what a caller said or pressed, and the per-call record.

The webhook adapter (``webhooks/voice.py``) maps Twilio's call requests to
these types and to one engine turn each; nothing here knows FastAPI or TwiML.
"""

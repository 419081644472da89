"""Reminder contacts: other phones a patient has verified to receive their reminders.

- :mod:`bot.contacts.verifier`: Twilio Verify through the official SDK (start, check);
- :mod:`bot.contacts.store`: who is whose verified contact (Redis and memory);
- :mod:`bot.contacts.flow`: the conversation that verifies a new number.
"""

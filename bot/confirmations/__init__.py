"""Appointment confirmations and follow-ups (docs/confirmations.md).

One concept per module:

- :mod:`bot.confirmations.status`: the status of an appointment (booked →
  confirmed → completed, or cancelled / no-show) and its timestamped changes;
- :mod:`bot.confirmations.figures`: confirmation and no-show rates over days;
- :mod:`bot.confirmations.cli`: ``bot appointments list|mark|stats``.
"""

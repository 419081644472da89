"""Durations as transcripts write them: ``90s``, ``15m``, ``25h``, ``2d``, ``1h30m``.

Example::

    parse_duration("1h30m")                 # timedelta(seconds=5400)
    format_duration(timedelta(minutes=90))  # '1h30m'
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """Parse ``90s``, ``15m``, ``25h``, ``2d``, or a combination in that order (``1h30m``).

    Raises :class:`ValueError` for anything else, including zero.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    """
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"{text!r} is not a duration")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    delta = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if delta <= timedelta(0):
        raise ValueError(f"{text!r} is zero; the clock only moves forward")
    return delta


def format_duration(delta: timedelta) -> str:
    """The inverse of :func:`parse_duration` (whole seconds).

    >>> format_duration(timedelta(days=1, minutes=30))
    '1d30m'
    """
    total = int(delta.total_seconds())
    if total <= 0:
        return "0s"
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s"))
    return "".join(f"{value}{unit}" for value, unit in units if value)

"""SMS awareness: segment counting (GSM-7 / UCS-2), Smart Encoding, finishing.

Pure functions, no I/O. Example::

    from bot.sms import count_segments, finish_sms

    body = finish_sms("Shall I book it?", reply.choices)
    count_segments(body)  # SegmentCount(encoding='GSM-7', segments=1, ...)
"""

from __future__ import annotations

from bot.sms.normalize import normalize
from bot.sms.render import (
    DEFAULT_MAX_SEGMENTS,
    cap_segments,
    finish_sms,
    numbered_options,
    pick_choice,
)
from bot.sms.segments import MAX_BODY_CHARS, SegmentCount, body_length, count_segments, is_gsm7

__all__ = [
    "DEFAULT_MAX_SEGMENTS",
    "MAX_BODY_CHARS",
    "SegmentCount",
    "body_length",
    "cap_segments",
    "count_segments",
    "finish_sms",
    "is_gsm7",
    "normalize",
    "numbered_options",
    "pick_choice",
]

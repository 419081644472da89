"""How replay shows values in its messages: quoted on one line, shortened.

Example::

    quote('say "hi"')        # '"say \\"hi\\""'
    short("x" * 500, 10)     # 'xxxxxxxxx…'
"""

from __future__ import annotations

import json


def quote(text: str) -> str:
    """Double-quoted, with escapes, on one line: how we show values in messages."""
    return json.dumps(text, ensure_ascii=False)


def short(text: str, limit: int = 160) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"

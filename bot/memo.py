"""Per-process memo for expensive, immutable start-up artefacts.

Building an app compiles every Jinja2 template, loads the content-template
registry and trains the classifier. Apps built again in one process (tests,
transcript replay: one app per conversation, ``bot chat``) reuse them. Keys
carry a fingerprint of the source files, so an edited file is always rebuilt.

Example::

    templates = memo(("replies", fingerprint(root)), lambda: ReplyTemplates(root))
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO: dict[Hashable, Any] = {}


def memo(key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per ``key`` per process; the result must be immutable."""
    if key not in _MEMO:
        _MEMO[key] = build()
    value: T = _MEMO[key]
    return value


def fingerprint(path: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, size and mtime of ``path`` (a file, or every file below a folder)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return tuple((str(p.resolve()), (st := p.stat()).st_size, st.st_mtime_ns) for p in files if p.exists())

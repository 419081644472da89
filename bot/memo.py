"""Per-process memo for expensive, immutable start-up artefacts.

Building an app compiles every Jinja2 template, loads the content-template
registry and trains the classifier. Apps built again in one process (tests,
transcript replay: one app per conversation, ``bot chat``) reuse them. Keys
carry a fingerprint of the source files, so an edited file is always rebuilt.

Example::

    templates = memo(("replies", fingerprint(root)), lambda: ReplyTemplates(root))
"""

from __future__ import annotations

import os
import stat
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
    """Name, size and mtime of ``path`` (a file, or every file below a folder).

    Example::

        fingerprint(Path("prompts"))  # (("/app/prompts/faq.j2", 412, 1764...), ...)
    """
    # os.walk and absolute names, not Path.rglob and resolve(): an app is built
    # per replayed conversation, and resolving every file took ~8 ms per folder.
    root = os.path.abspath(path)
    if os.path.isdir(root):
        files = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names)
    else:
        files = [root]
    found = []
    for name in files:
        try:
            st = os.stat(name)
        except OSError:  # gone since the walk, or a dangling link
            continue
        if stat.S_ISREG(st.st_mode):
            found.append((name, st.st_size, st.st_mtime_ns))
    return tuple(found)

"""Per-process memo for expensive, immutable start-up artefacts.

Building an app compiles every Jinja2 template, loads the content-template
registry and trains the classifier. Apps built again in one process (tests,
transcript replay: one app per conversation, ``bot chat``) reuse them. Keys
carry a fingerprint of the source files, so an edited file is always rebuilt.

Example::

    templates = memo(("replies", fingerprint(root)), lambda: ReplyTemplates(root))

A tool that builds many apps in a row from files it does not edit (transcript
replay: one app per conversation) can say so with :func:`sources_unchanged`:
inside it each path is fingerprinted once, not once per app.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
Fingerprint = tuple[tuple[str, int, int], ...]

_MEMO: dict[Hashable, Any] = {}
# Inside sources_unchanged(): the fingerprints taken so far, by path.
_UNCHANGED: ContextVar[dict[str, Fingerprint] | None] = ContextVar("memo_sources_unchanged", default=None)


def memo(key: Hashable, build: Callable[[], T]) -> T:
    """``build()`` once per ``key`` per process; the result must be immutable."""
    if key not in _MEMO:
        _MEMO[key] = build()
    value: T = _MEMO[key]
    return value


@contextmanager
def sources_unchanged() -> Iterator[None]:
    """Within the block (and the tasks it starts), :func:`fingerprint` reads each path once.

    For a tool that builds many apps in a row while nobody edits their source
    files: replay builds one app per conversation, and walking and stat-ing
    the prompt and intent folders was about a third of building one. An edit
    made during the block is seen by the next block.

    Example::

        with sources_unchanged():
            for transcript in transcripts:
                await replay(transcript)   # each builds an app
    """
    token = _UNCHANGED.set({})
    try:
        yield
    finally:
        _UNCHANGED.reset(token)


def fingerprint(path: Path) -> Fingerprint:
    """Name, size and mtime of ``path`` (a file, or every file below a folder).

    Example::

        fingerprint(Path("prompts"))  # (("/app/prompts/faq.j2", 412, 1764...), ...)
    """
    taken = _UNCHANGED.get()
    if taken is None:
        return _fingerprint(path)
    key = os.path.abspath(path)
    found = taken.get(key)
    if found is None:
        found = taken[key] = _fingerprint(path)
    return found


def _fingerprint(path: Path) -> Fingerprint:
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

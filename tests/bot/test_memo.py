"""bot.memo: fingerprints, and taking them once while sources are unchanged."""

from __future__ import annotations

import os
from pathlib import Path

from bot.memo import fingerprint, sources_unchanged


def _edit(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # a later mtime, whatever the clock


def test_an_edited_file_changes_the_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "a.j2").write_text("hi", encoding="utf-8")
    before = fingerprint(tmp_path)
    _edit(tmp_path / "a.j2", "hello")
    assert fingerprint(tmp_path) != before


def test_sources_unchanged_fingerprints_each_path_once_and_edits_show_after(tmp_path: Path) -> None:
    (tmp_path / "a.j2").write_text("hi", encoding="utf-8")
    with sources_unchanged():
        first = fingerprint(tmp_path)
        _edit(tmp_path / "a.j2", "hello")
        assert fingerprint(tmp_path) is first
    assert fingerprint(tmp_path) != first
    with sources_unchanged():
        assert fingerprint(tmp_path) == fingerprint(tmp_path) != first

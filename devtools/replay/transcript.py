"""The transcript format (version 1): parse, validate, select.

A transcript file holds one conversation, or several as YAML documents split by
``---``. Parsing is strict, as ``docs/transcripts.md`` promises: unknown keys,
missing keys and malformed values raise :class:`~bot.errors.TranscriptError`
whose message starts with ``path:line:`` so an editor can jump to the spot.

The model (the conversation, its steps, what they expect) is
:mod:`devtools.replay.steps`, re-exported here; the strict reading is
:mod:`devtools.replay.reader` (over :mod:`devtools.replay.nodes` and
:mod:`devtools.replay.expect_reader`); durations are :mod:`devtools.replay.durations`.

Example::

    [t] = load_transcripts([Path("tests/transcripts/greeting.yaml")])
    # greeting.yaml:
    #   name: greeting
    #   user: "+14155550123"
    #   turns:
    #     - user: "hi"
    #       expect: {reply_contains: "book"}
    step = t.turns[0]
    step.text, step.line, step.expect.reply_contains  # ('hi', 4, ('book',))
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from bot.errors import TranscriptError
from devtools.replay.durations import format_duration, parse_duration
from devtools.replay.reader import Reader
from devtools.replay.steps import (
    AdvanceStep,
    BroadcastStep,
    ButtonStep,
    CallStep,
    DigitsStep,
    DuplicateStep,
    Expect,
    HangupStep,
    RunStep,
    StatusStep,
    Step,
    TextStep,
    Transcript,
    UserStep,
)
from devtools.replay.text import quote

# The format's model, re-exported: callers load transcripts and read their steps from one place.
__all__ = [
    "AdvanceStep",
    "BroadcastStep",
    "ButtonStep",
    "CallStep",
    "DigitsStep",
    "DuplicateStep",
    "Expect",
    "HangupStep",
    "RunStep",
    "StatusStep",
    "Step",
    "TextStep",
    "Transcript",
    "UserStep",
    "format_duration",
    "load_transcripts",
    "parse_duration",
    "parse_transcripts",
    "select",
]


def load_transcripts(paths: Iterable[Path | str]) -> list[Transcript]:
    """Load every conversation from files and folders, in a stable order.

    A folder contributes its ``*.yaml`` and ``*.yml`` files, recursively,
    sorted by path, skipping hidden files and folders. A path given twice is
    read once. A missing path, or a folder with no transcript files, is an
    error: a typo on the command line must not look like "0 failed".

    Example::

        load_transcripts([Path("tests/transcripts"), Path("extra/one.yaml")])
    """
    seen: set[Path] = set()
    transcripts: list[Transcript] = []
    for path in map(Path, paths):
        for file in _files(path):
            resolved = file.resolve()
            if resolved in seen:
                continue
            seen.add(resolved)
            transcripts.extend(_load_file(file))
    return transcripts


def select(transcripts: Iterable[Transcript], pattern: str | None) -> list[Transcript]:
    """The transcripts whose name or file name contains ``pattern`` (case-insensitive).

    This is ``bot replay -k``. An empty or None pattern selects everything.

    Example::

        select(load_transcripts([Path("tests/transcripts")]), "opt out")
    """
    if not pattern:
        return list(transcripts)
    needle = pattern.casefold()
    return [t for t in transcripts if needle in t.name.casefold() or needle in t.path.name.casefold()]


def parse_transcripts(text: str, path: Path | str = "<string>") -> list[Transcript]:
    """Parse YAML source holding one or more conversations; ``path`` is used in errors.

    Example::

        parse_transcripts(Path("a.yaml").read_text(), path="a.yaml")
    """
    reader = Reader(Path(path))
    documents = reader.compose(text)
    transcripts: list[Transcript] = []
    names: dict[str, int] = {}
    for document in documents:
        transcript = reader.conversation(document)
        if transcript.name in names:
            raise reader.error(
                transcript.line,
                f"name {quote(transcript.name)} is already used by the conversation at line "
                f"{names[transcript.name]}; names must be unique in a file",
            )
        names[transcript.name] = transcript.line
        transcripts.append(transcript)
    if not transcripts:
        raise reader.error(1, "no conversation in this file (expected name, user and turns)")
    return transcripts


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        found = sorted(
            p
            for p in path.rglob("*")
            if p.suffix in (".yaml", ".yml")
            and p.is_file()
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )
        if not found:
            raise TranscriptError(f"{path}: no *.yaml or *.yml transcript files in this folder")
        yield from found
    elif path.is_file():
        yield path
    else:
        raise TranscriptError(f"{path}: no such file or folder")


def _load_file(path: Path) -> list[Transcript]:
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise TranscriptError(f"{path}:{line}: not valid UTF-8 text ({exc.reason})") from None
    return parse_transcripts(text, path)



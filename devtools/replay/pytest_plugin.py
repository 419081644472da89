"""A pytest plugin: every conversation in a transcript file is one test.

It collects ``*.yaml`` / ``*.yml`` files below any folder named
``transcripts`` (``tests/transcripts/**/*.yaml``), one test item per
conversation, named after it, and runs each with the same
:class:`~devtools.replay.runner.ReplayRunner` as ``bot replay``; a failure reads
exactly as ``bot replay`` prints it. An invalid file is a collection error
naming the file and line. Conversations that cannot run are skipped, with the
reason.

Enable it in a project with either::

    pytest -p devtools.replay.pytest_plugin
    # or, in the root conftest.py:
    pytest_plugins = ["devtools.replay.pytest_plugin"]

This repository imports the hook in ``tests/transcripts/conftest.py``
(pytest refuses ``pytest_plugins`` in a conftest below the root)::

    from devtools.replay.pytest_plugin import pytest_collect_file  # noqa: F401

Settings come from the environment like ``bot replay``'s: ``REDIS_URL`` set
means every conversation runs against that Redis.

Example::

    $ pytest tests/transcripts -k "opt out"
    tests/transcripts/spine/opt_out.yaml::STOP on SMS is confirmed by Twilio, not the bot PASSED
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.errors import TranscriptError
from devtools.replay.config import replay_settings
from devtools.replay.report import ConversationResult
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import Transcript, load_transcripts

__all__ = ["TranscriptFailure", "TranscriptFile", "TranscriptItem", "pytest_collect_file"]

_FOLDER = "transcripts"
_SUFFIXES = (".yaml", ".yml")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect a YAML file below a ``transcripts`` folder (once, however the hook was enabled)."""
    if file_path.suffix not in _SUFFIXES or not _in_transcripts_folder(file_path):
        return None
    seen = parent.config.stash.setdefault(_COLLECTED, set())
    if file_path in seen:
        return None  # both the plugin and a conftest import are active
    seen.add(file_path)
    collector: pytest.Collector = TranscriptFile.from_parent(parent, path=file_path)
    return collector


def _in_transcripts_folder(path: Path) -> bool:
    parents = path.parent.parts
    return _FOLDER in parents and not any(part.startswith(".") for part in path.parts[parents.index(_FOLDER) :])


class TranscriptFailure(Exception):
    """A conversation failed; its text is what ``bot replay`` prints."""

    def __init__(self, result: ConversationResult) -> None:
        super().__init__(result.failure or f"{result.name} failed")
        self.result = result


class TranscriptFile(pytest.File):
    """One transcript file: an item per conversation."""

    def collect(self) -> Iterator[pytest.Item]:
        try:
            transcripts = load_transcripts([self.path])
        except TranscriptError as exc:
            raise self.CollectError(str(exc)) from None
        for transcript in transcripts:
            # "::" separates node ID parts; keep names readable and unambiguous.
            name = transcript.name.replace("::", ": :")
            yield TranscriptItem.from_parent(self, name=name, transcript=transcript)


class TranscriptItem(pytest.Item):
    """One conversation, replayed in-process."""

    def __init__(self, *, transcript: Transcript, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.transcript = transcript

    def runtest(self) -> None:
        """Replay the conversation; fail with the replay's text, or skip with its reason."""
        result = _session(self.config).run(self.transcript)
        if result.status == "failed":
            raise TranscriptFailure(result)
        if result.status == "skipped":
            pytest.skip(result.reason or "skipped")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        """The same failure text as ``bot replay``, without a Python traceback."""
        if isinstance(excinfo.value, TranscriptFailure):
            return excinfo.value.result.failure or str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the conversation is: its file and (0-based) line."""
        return self.path, self.transcript.line - 1, f"transcript: {self.transcript.name}"


class _ReplaySession:
    """One event loop and one runner for the whole test session.

    The runner builds the bot once and shares it between conversations, so
    every conversation of the session must run on the same loop.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.runner = ReplayRunner(replay_settings(), concurrency=1)

    def run(self, transcript: Transcript) -> ConversationResult:
        report = self.loop.run_until_complete(self.runner.run([transcript]))
        return report.results[0]

    def close(self) -> None:
        try:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()


_COLLECTED = pytest.StashKey[set[Path]]()
_SESSION = pytest.StashKey[_ReplaySession]()


def _session(config: pytest.Config) -> _ReplaySession:
    session = config.stash.get(_SESSION, None)
    if session is None:
        session = _ReplaySession()
        config.stash[_SESSION] = session
        config.add_cleanup(session.close)
    return session

"""The example businesses under ``examples/`` are pure data, and their transcripts pass.

``examples/salon`` is a hair salon with two stylists: its own ``intents/``
(business, intents, safety, templates ...) and ``prompts/``, run by the same
engine with ``INTENTS_DIR``/``PROMPTS_DIR``, and its own conversations in
``transcripts/``, replayed here exactly as ``bot replay`` does:

    INTENTS_DIR=examples/salon/intents PROMPTS_DIR=examples/salon/prompts bot replay examples/salon/transcripts
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.business import load_business
from devtools.replay.config import replay_settings
from devtools.replay.runner import ReplayRunner
from devtools.replay.transcript import Transcript, load_transcripts

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SALON = EXAMPLES / "salon"
SALON_TRANSCRIPTS = load_transcripts([SALON / "transcripts"])


def test_an_example_business_has_no_code_of_its_own() -> None:
    examples = [p for p in EXAMPLES.iterdir() if p.is_dir()]
    assert SALON in examples
    for example in examples:
        assert {p.name for p in example.iterdir()} >= {"intents", "prompts", "transcripts"}, example
        code = [p for p in example.rglob("*") if p.suffix in (".py", ".pyc", ".so")]
        assert code == [], f"{example.name} must be data only"


def test_the_salon_books_two_stylists_and_speaks_its_own_words() -> None:
    salon = load_business(SALON / "intents" / "business.yaml")
    assert (salon.name, salon.kind, salon.words.customer) == ("Snip & Style Salon", "hair salon", "client")
    assert salon.resource_keys == ("jess", "maria")
    assert salon.resources_for("trim") == ("jess", "maria")
    assert salon.resources_for("highlights") == ("maria",)  # color is Maria's only
    # A stylist named in passing, in any case, as a whole word only.
    assert salon.find_resource("can i get a trim w/ JESS sat") == "jess"
    assert salon.find_resource("maria's free at 2?") == "maria"
    assert salon.find_resource("jessica wants a cut") is None


@pytest.fixture(scope="module")
def salon_runner() -> Iterator[tuple[asyncio.AbstractEventLoop, ReplayRunner]]:
    # One loop and one runner: the runner builds the salon's bot once and shares it.
    loop = asyncio.new_event_loop()
    settings = replay_settings(intents_dir=str(SALON / "intents"), prompts_dir=str(SALON / "prompts"))
    try:
        yield loop, ReplayRunner(settings, concurrency=1)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


@pytest.mark.parametrize("transcript", SALON_TRANSCRIPTS, ids=[t.name for t in SALON_TRANSCRIPTS])
def test_salon_transcript(transcript: Transcript, salon_runner: tuple[asyncio.AbstractEventLoop, ReplayRunner]) -> None:
    loop, runner = salon_runner
    result = loop.run_until_complete(runner.run_transcript(transcript))
    assert result.status == "passed", result.failure or result.reason

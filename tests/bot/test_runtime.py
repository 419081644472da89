"""The composition root (bot/runtime.py): typed parts, one business, the notifier passed in."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.brain import Brain
from bot.engine import TurnFailedError
from bot.errors import BotError, ConfigError
from bot.outbound.outbox import InlineOutbox
from bot.runtime import Runtime, build_runtime
from bot.settings import Settings
from bot.storage import MemoryStore


def test_the_business_file_is_loaded_once_and_shared(make_settings: Callable[..., Settings]) -> None:
    runtime = build_runtime(make_settings(), store=MemoryStore())
    assert isinstance(runtime.handler, Brain)
    assert runtime.business is not None and runtime.business.name
    # One object: what the Brain answers from is what reminders are written with.
    assert runtime.handler.business is runtime.business
    assert runtime.outbound.reminders.business is runtime.business


async def test_a_shared_brain_keeps_no_observers_of_closed_runtimes(make_settings: Callable[..., Settings]) -> None:
    # Replay shares one Brain among the apps of many conversations; each closed app lets go of it.
    owner = build_runtime(make_settings(), store=MemoryStore())
    assert isinstance(owner.handler, Brain)
    before = list(owner.handler.book.observers)
    for _ in range(3):
        guest = build_runtime(make_settings(), store=MemoryStore(), handler=owner.handler)
        assert len(owner.handler.book.observers) == len(before) + len(guest.book_observers) > len(before)
        await guest.aclose()
    assert owner.handler.book.observers == before


def test_parts_are_typed_fields_wired_to_one_another(make_settings: Callable[..., Settings]) -> None:
    runtime = build_runtime(make_settings(), store=MemoryStore())
    jobs = runtime.outbox_jobs
    assert jobs.engine is runtime.engine and jobs.sender is runtime.outbound.sender
    assert jobs.outbox is runtime.outbound.outbox and runtime.rest_deliver is not None
    # Without Redis the outbox runs this process's jobs, attached at the root.
    assert isinstance(runtime.outbound.outbox, InlineOutbox) and runtime.outbound.outbox.jobs is jobs
    assert not hasattr(runtime, "extras")


def test_the_staff_notifier_is_built_at_the_root(make_settings: Callable[..., Settings]) -> None:
    runtime = build_runtime(make_settings(), store=MemoryStore())
    assert isinstance(runtime.handler, Brain)
    assert runtime.handler.notify_staff is not None


def test_a_missing_business_file_stops_the_default_bot(make_settings: Callable[..., Settings],
                                                       tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"business\.yaml"):
        Runtime.build(make_settings(intents_dir=str(tmp_path)), store=MemoryStore())


def test_a_custom_handler_runs_without_a_business_file(make_settings: Callable[..., Settings],
                                                       tmp_path: Path) -> None:
    class Quiet:
        template_context: dict[str, object] = {}  # noqa: RUF012

        async def handle(self, ctx: object) -> object:
            raise NotImplementedError

    # Everything of the intents folder but the business file.
    shutil.copytree(Path(make_settings().intents_dir) / "consent", tmp_path / "consent")
    runtime = build_runtime(make_settings(intents_dir=str(tmp_path)), store=MemoryStore(), handler=Quiet())
    assert runtime.business is None and runtime.handler is not None


def test_a_failed_turn_is_one_of_our_errors() -> None:
    # The CLI and the jobs end our own errors with one clear line (bot/errors.py).
    assert issubclass(TurnFailedError, BotError)

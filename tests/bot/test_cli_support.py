"""What the command groups share (bot/cli_support.py): a group, its Redis, one clear error line."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from bot.cli_support import command_group, on_stores, redis_url_for
from bot.errors import BotError
from bot.storage.stores import Stores


def test_a_bare_group_shows_its_help() -> None:
    group = command_group("things", "Things: list them.")

    @group.command("list")
    def _list() -> None:
        typer.echo("none")

    @group.command("count")
    def _count() -> None:
        typer.echo("0")

    result = CliRunner().invoke(group, [])
    assert "Things: list them." in result.output and "count" in result.output


def test_no_redis_url_names_what_needs_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as caught:
        redis_url_for(None, "things live in Redis")
    assert caught.value.exit_code == 2
    assert capsys.readouterr().err == "error: REDIS_URL is not set: things live in Redis\n"
    assert redis_url_for("redis://x", "things") == "redis://x"


def test_work_runs_on_the_stores_and_a_bot_error_is_one_line(
    redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async def count(stores: Stores) -> str:
        return type(stores.appointments).__name__

    assert on_stores(redis_url, count)

    async def broken(stores: Stores) -> str:
        raise BotError("the ledger is confused")

    with pytest.raises(typer.Exit):
        on_stores(redis_url, broken)
    assert capsys.readouterr().err == "error: the ledger is confused\n"

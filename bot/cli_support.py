"""What the ``bot`` command groups share: how a group is made, its Redis, one clear error line.

Example::

    consent_app = command_group("consent", "The consent ledger: export, one number's history ...")
    raise fail("--day 'March 3': give a date like 2026-03-03")   # prints "error: ...", exit status 2
    count = on_stores(redis_url_for(settings.redis_url, "the consent ledger lives in Redis"), work)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import typer

from bot.errors import BotError

if TYPE_CHECKING:
    from bot.storage.stores import Stores

T = TypeVar("T")


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the returned ``typer.Exit(2)`` is for the caller to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def command_group(name: str, help: str) -> typer.Typer:
    """A ``bot NAME`` group: its help when run bare, no shell-completion commands of its own."""
    return typer.Typer(name=name, help=help, no_args_is_help=True, add_completion=False)


def redis_url_for(redis_url: str | None, needs: str) -> str:
    """``redis_url`` when set; else the command ends with "REDIS_URL is not set: ``needs``"."""
    if not redis_url:
        raise fail(f"REDIS_URL is not set: {needs}")
    return redis_url


def on_stores(redis_url: str, work: Callable[[Stores], Awaitable[T]]) -> T:
    """Run ``work`` on the stores in the Redis of ``redis_url`` and close them; a BotError is an error line."""
    from bot.storage.stores import Stores

    async def go() -> T:
        stores = Stores.from_url(redis_url)
        try:
            return await work(stores)
        finally:
            await stores.close()

    try:
        return asyncio.run(go())
    except BotError as exc:
        raise fail(str(exc)) from None

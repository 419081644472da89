"""What the ``bot`` command groups share: ending a command with one clear error line.

Example::

    raise fail("--day 'March 3': give a date like 2026-03-03")   # prints "error: ...", exit status 2
"""

from __future__ import annotations

import typer


def fail(message: str) -> typer.Exit:
    """Print ``error: message`` on stderr; the returned ``typer.Exit(2)`` is for the caller to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)

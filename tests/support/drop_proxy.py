"""A TCP proxy in front of a real Redis that drops the connection carrying a transaction's EXEC.

A Redis shutdown or a network cut can end a connection just as a client's
``MULTI ... EXEC`` goes out; this proxy makes that moment repeatable. It
forwards bytes both ways and, for the first ``drops`` chunks from a client
that contain ``EXEC``, closes that client's connection instead of forwarding
the chunk: the transaction never reaches Redis. Everything else (and every
later connection's EXEC) passes through unchanged.

Example::

    async with DropExecProxy(redis_url, drops=1) as proxy:
        client = ArqRedis.from_url(proxy.url)
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from urllib.parse import urlsplit

_EXEC = b"\r\nEXEC\r\n"


class DropExecProxy:
    """See the module docstring; ``drops=None`` drops every EXEC."""

    def __init__(self, redis_url: str, *, drops: int | None = 1) -> None:
        target = urlsplit(redis_url)
        self._host, self._port = target.hostname or "127.0.0.1", target.port or 6379
        self._db = target.path or "/0"
        self.drops = drops
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"redis://127.0.0.1:{port}{self._db}"

    async def __aenter__(self) -> DropExecProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection(self._host, self._port)
        up = asyncio.ensure_future(self._pipe(client_r, redis_w, client_w, upstream=True))
        down = asyncio.ensure_future(self._pipe(redis_r, client_w, redis_w, upstream=False))
        self._tasks.update((up, down))
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        for task in (up, down):
            task.cancel()
        for writer in (client_w, redis_w):
            writer.close()
        self._tasks.difference_update((up, down))

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    other: asyncio.StreamWriter, *, upstream: bool) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                if upstream and _EXEC in chunk and (self.drops is None or self.dropped < self.drops):
                    self.dropped += 1
                    return  # the connection ends here; Redis never sees the transaction
                writer.write(chunk)
                await writer.drain()

"""What the simulator announces to subscribers (the dev phone): events and bounded streams.

Example::

    with sim.subscribe() as events:
        (await events.get()).kind   # EventKind.MESSAGE_CREATED
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any, Generic, TypeVar

from devtools.simulator.message import SimMessage

T = TypeVar("T")



class EventKind(enum.StrEnum):
    """What a subscriber hears about."""

    MESSAGE_CREATED = "message.created"  # any direction, any origin
    STATUS_CHANGED = "message.status"
    INBOUND_SENT = "inbound.sent"  # a webhook POST to the bot finished
    CALLBACK_SENT = "callback.sent"  # a status callback POST finished
    OPT_OUT_CHANGED = "optout.changed"


@dataclass(frozen=True, slots=True)
class SimulatorEvent:
    """One thing that happened, with the message as it was at that moment."""

    kind: EventKind
    message: SimMessage | None = None
    data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for SSE or WebSocket frames."""
        return {
            "kind": self.kind.value,
            "message": self.message.to_dict() if self.message else None,
            "data": dict(self.data),
        }


class EventStream(Generic[T]):
    """A bounded live feed of events for one reader (a dev phone tab).

    A reader that stops reading loses its oldest events (``dropped`` counts
    them) rather than growing memory without limit. ``on_close`` lets the
    owner forget the stream.

    Example::

        with sim.subscribe() as events:
            async for event in events:
                await websocket.send_json(event.to_dict())
    """

    def __init__(self, maxsize: int, on_close: Callable[[EventStream[T]], None] | None = None) -> None:
        self._queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=maxsize)
        self._on_close = on_close
        self.dropped = 0
        self.closed = False

    def put(self, event: T | None) -> None:
        """Queue an event (``None`` ends the stream)."""
        if self._queue.full():
            # Drop the oldest: a phone would rather miss an old tick than the latest.
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(event)

    _put = put

    async def get(self) -> T:
        """Wait for the next event; raises :class:`EOFError` once closed."""
        event = await self._queue.get()
        if event is None:
            self._queue.put_nowait(None)  # keep later readers from hanging
            raise EOFError("stream closed")
        return event

    def pending(self) -> list[T]:
        """Take every event queued so far, without waiting (a page's first paint)."""
        events: list[T] = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is None:
                self._queue.put_nowait(None)
                break
            events.append(event)
        return events

    def close(self) -> None:
        """Stop receiving; a pending :meth:`get` wakes up with EOFError."""
        if not self.closed:
            self.closed = True
            if self._on_close is not None:
                self._on_close(self)
            self.put(None)

    def __aiter__(self) -> EventStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.get()
        except EOFError:
            raise StopAsyncIteration from None

    def __enter__(self) -> EventStream[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


Subscription = EventStream["SimulatorEvent"]

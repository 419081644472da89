"""HTTP-level faults for the simulated Messages API: what Twilio's edge does on a bad day.

:class:`~devtools.simulator.failures.FailureRule` fails messages *after* Twilio
accepted them (status callbacks). This module fails the *create call*
itself, as an ASGI wrapper around the simulator app, so a client sees what
it would see from api.twilio.com under load or in an outage:

- :meth:`ApiFaults.fail_next`: the next create calls answer an error (429
  with code 20429, a 500, a 503 ...) and create nothing;
- :meth:`ApiFaults.delay_answers`: create calls do create the message but
  hold the answer back, the way a slow network or a killed client makes a
  sender unsure whether its message went out.

``ApiFaults.creates`` records when each create call arrived (monotonic
seconds), for measuring a sender's pace.

Example::

    faults = ApiFaults()
    app = with_api_faults(create_simulator_app(sim), faults)
    faults.fail_next(ApiFault.too_many_requests(), ApiFault.server_error())
    # the next two creates fail (429, then 500); the third succeeds
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devtools.simulator.errors import MORE_INFO


@dataclass(frozen=True, slots=True)
class ApiFault:
    """One refused create call: the HTTP status and Twilio's error code and text."""

    status: int
    code: int | None
    message: str

    @classmethod
    def too_many_requests(cls) -> ApiFault:
        return cls(429, 20429, "Too Many Requests")

    @classmethod
    def server_error(cls, status: int = 500) -> ApiFault:
        return cls(status, 20500 if status == 500 else None, "Internal Server Error")

    def body(self) -> bytes:
        payload: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.code is not None:
            payload["more_info"] = MORE_INFO.format(code=self.code)
        return json.dumps(payload).encode()


class ApiFaults:
    """The fault plan shared by a test and the wrapped app (one event loop)."""

    def __init__(self) -> None:
        self._next: deque[ApiFault] = deque()
        self.answer_delay = 0.0
        self.creates: list[float] = []
        self.refused = 0

    def fail_next(self, *faults: ApiFault) -> None:
        """Answer the next create calls with these faults, in order."""
        self._next.extend(faults)

    def delay_answers(self, seconds: float) -> None:
        """Create messages normally but answer ``seconds`` later (0: stop)."""
        self.answer_delay = seconds

    def _take(self) -> ApiFault | None:
        return self._next.popleft() if self._next else None


def _is_create(scope: Scope) -> bool:
    path: str = scope.get("path", "")
    return scope["type"] == "http" and scope.get("method") == "POST" and path.endswith("/Messages.json")


def with_api_faults(app: ASGIApp, faults: ApiFaults) -> ASGIApp:
    """Wrap the simulator app so create calls obey ``faults``."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if not _is_create(scope):
            await app(scope, receive, send)
            return
        faults.creates.append(time.monotonic())
        fault = faults._take()
        if fault is not None:
            faults.refused += 1
            await send({"type": "http.response.start", "status": fault.status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": fault.body()})
            return
        delay = faults.answer_delay
        if not delay:
            await app(scope, receive, send)
            return

        async def late_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await asyncio.sleep(delay)  # the message exists already; the answer lags
            await send(message)

        await app(scope, receive, late_send)

    return wrapped

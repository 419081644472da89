"""Reading a Twilio form POST safely: size, content type, UTF-8, blank values.

Twilio signs every parameter it sends, blank ones included (``Body=``), so
parsing must keep blanks and repeated keys exactly. Anything else that is off
is a :class:`~bot.errors.BadRequestError` with the status to answer.

Example::

    form = await read_form(request, max_bytes=65536)
    form.first("Body")  # "" when sent blank
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Final
from urllib.parse import parse_qsl

from starlette.requests import ClientDisconnect, Request

from bot.errors import BadRequestError

FORM_TYPE = "application/x-www-form-urlencoded"
#: Twilio sends its (small) body at once; a client slower than this is broken.
BODY_TIMEOUT_SECONDS: Final = 2.0


class FormData:
    """An ordered multi-dict of form fields, as the twilio validator expects.

    ``getall`` is the hook :class:`twilio.request_validator.RequestValidator`
    uses to sign repeated keys.
    """

    __slots__ = ("_items", "_map")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._items = items
        self._map: dict[str, list[str]] = {}
        for key, value in items:
            self._map.setdefault(key, []).append(value)

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __contains__(self, key: object) -> bool:
        return key in self._map

    def __len__(self) -> int:
        return len(self._map)

    def getall(self, key: str) -> list[str]:
        return self._map[key]

    def first(self, key: str, default: str | None = None) -> str | None:
        values = self._map.get(key)
        return values[0] if values else default

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)


def parse_form(body: bytes) -> FormData:
    """Parse an urlencoded body, strictly UTF-8, keeping blank values."""
    try:
        text = body.decode("utf-8")
        items = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise BadRequestError(f"request body is not valid UTF-8 ({exc.reason})") from exc
    except ValueError as exc:
        raise BadRequestError(f"malformed form body: {exc}") from exc
    return FormData(items)


async def read_body(request: Request, *, max_bytes: int, within: float = BODY_TIMEOUT_SECONDS) -> bytes:
    """Read at most ``max_bytes`` of the body within ``within`` seconds.

    413 beyond ``max_bytes``, even without Content-Length; 400 when the body
    stops short of its Content-Length (the client stalls or hangs up), so a
    broken client neither holds the request open nor leaves a traceback.
    """
    declared = request.headers.get("content-length")
    expected: int | None = None
    if declared is not None:
        if not declared.strip().isascii() or not declared.strip().isdigit():
            raise BadRequestError("invalid Content-Length header")
        expected = int(declared)
        if expected > max_bytes:
            raise BadRequestError(f"request body over {max_bytes} bytes", 413)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(within):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_bytes:
                    raise BadRequestError(f"request body over {max_bytes} bytes", 413)
                chunks.append(chunk)
    except (TimeoutError, ClientDisconnect) as exc:
        of = f" of {expected}" if expected is not None else ""
        raise BadRequestError(f"request body incomplete: {size}{of} bytes received") from exc
    if expected is not None and size < expected:
        raise BadRequestError(f"request body incomplete: {size} of {expected} bytes received")
    return b"".join(chunks)


async def read_form(request: Request, *, max_bytes: int) -> FormData:
    """Check the content type, read the body within limits, and parse it."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != FORM_TYPE:
        raise BadRequestError(
            f"expected Content-Type {FORM_TYPE}, got {content_type or 'none'}", 415
        )
    charset = _charset(content_type)
    if charset not in ("utf-8", "utf8", None):
        raise BadRequestError(f"unsupported charset {charset}; Twilio sends UTF-8", 415)
    return parse_form(await read_body(request, max_bytes=max_bytes))


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return None

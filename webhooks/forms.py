"""Reading a Twilio form POST safely: size, content type, UTF-8, blank values.

Twilio signs every parameter it sends, blank ones included (``Body=``), so
parsing must keep blanks and repeated keys exactly. Anything else that is off
is a :class:`~bot.errors.BadRequestError` with the status to answer.

Example::

    form = await read_form(request, max_bytes=65536)
    form.first("Body")  # "" when sent blank
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

from starlette.requests import Request

from bot.errors import BadRequestError

FORM_TYPE = "application/x-www-form-urlencoded"


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


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """Read at most ``max_bytes`` of the body; 413 beyond, even without Content-Length."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > max_bytes:
                raise BadRequestError(f"request body over {max_bytes} bytes", 413)
        except ValueError as exc:
            raise BadRequestError("invalid Content-Length header") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BadRequestError(f"request body over {max_bytes} bytes", 413)
        chunks.append(chunk)
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

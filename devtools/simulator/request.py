"""A "create message" request (``POST …/Messages.json``) as the simulator understands it.

Example::

    CreateMessageRequest.from_pairs([("To", "+14155550123"), ("Body", "Hi")]).to
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CreateMessageRequest:
    """The parameters of ``POST .../Messages.json`` the simulator understands.

    Build it from the form the SDK sends with :meth:`from_pairs`; unknown
    parameters are ignored, like Twilio ignores what it does not use.
    """

    to: str | None = None
    from_: str | None = None
    messaging_service_sid: str | None = None
    body: str | None = None
    media_urls: tuple[str, ...] = ()
    content_sid: str | None = None
    content_variables: str | None = None  # a JSON string, as on the wire
    status_callback: str | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, Any]]) -> CreateMessageRequest:
        """Read a (repeatable-key) form: ``MediaUrl`` may occur up to 10 times.

        >>> CreateMessageRequest.from_pairs([("To", "+1415"), ("MediaUrl", "a"), ("MediaUrl", "b")]).media_urls
        ('a', 'b')
        """
        single: dict[str, str] = {}
        media: list[str] = []
        for key, value in pairs:
            if not isinstance(value, str):
                continue  # file uploads: Twilio's create takes none
            if key == "MediaUrl":
                media.append(value)
            else:
                single.setdefault(key, value)
        return cls(
            to=single.get("To") or None,
            from_=single.get("From") or None,
            messaging_service_sid=single.get("MessagingServiceSid") or None,
            body=single.get("Body"),
            media_urls=tuple(u for u in media if u),
            content_sid=single.get("ContentSid") or None,
            content_variables=single.get("ContentVariables") or None,
            status_callback=single.get("StatusCallback") or None,
        )

"""Content templates (``HX…`` ContentSids) the simulated account renders, and their ``{{1}}`` placeholders.

Example::

    fill_placeholders("Hi {{1}}", {"1": "Ana"})   # 'Hi Ana'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.messages import Choice

_CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


def fill_placeholders(text: str, variables: Mapping[str, str]) -> str:
    """Twilio's ``{{name}}`` placeholders filled from ``variables``; unknown ones stay as written.

    >>> fill_placeholders("Hi {{1}}, {{ 2 }} {{3}}", {"1": "Ana", "2": "see you"})
    'Hi Ana, see you {{3}}'
    """
    return _PLACEHOLDER.sub(lambda m: variables.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True, slots=True)
class ContentTemplate:
    """A content template the simulated account owns (``ContentSid`` → text).

    ``body`` uses Twilio's ``{{1}}`` placeholders; ``buttons`` become
    WhatsApp quick replies (dropped on SMS, where Twilio sends only the text)
    and may use placeholders in their titles and ids too (generic quick
    replies such as ``quick_reply_2``). A ``twilio/list-picker`` keeps its
    items as ``buttons`` (id, item) and the label that opens them as
    ``list_button``.

    >>> t = ContentTemplate(sid="HX" + "a" * 32, name="hello", body="Hi {{1}}!",
    ...                     buttons=(Choice("{{2}}", "See you {{2}}"),))
    >>> t.render({"1": "Ana", "2": "soon"})
    'Hi Ana!'
    >>> t.render_buttons({"1": "Ana", "2": "soon"})
    (Choice(payload='soon', title='See you soon'),)
    """

    sid: str
    name: str
    body: str
    buttons: tuple[Choice, ...] = ()
    content_type: str = "twilio/text"
    list_button: str | None = None

    def __post_init__(self) -> None:
        if not _CONTENT_SID.match(self.sid):
            raise ValueError(f"ContentSid must be HX + 32 hex digits, got {self.sid!r}")

    @property
    def placeholders(self) -> frozenset[str]:
        """The variable names the body and buttons use (``{"1", "2"}``); Twilio counts both."""
        texts = [self.body, *(b.title for b in self.buttons), *(b.payload for b in self.buttons),
                 self.list_button or ""]
        return frozenset(name for text in texts for name in _PLACEHOLDER.findall(text))

    @property
    def starts_conversations(self) -> bool:
        """Whether WhatsApp accepts it outside the 24 h window (63016 otherwise)."""
        return self.content_type not in {"twilio/list-picker", "twilio/location"}

    def render(self, variables: Mapping[str, str]) -> str:
        """The text the user sees; unknown placeholders stay as written."""
        return fill_placeholders(self.body, variables)

    def render_buttons(self, variables: Mapping[str, str]) -> tuple[Choice, ...]:
        """The buttons the user sees: titles and ids with their placeholders filled."""
        return tuple(
            Choice(fill_placeholders(b.payload, variables), fill_placeholders(b.title, variables)) for b in self.buttons
        )

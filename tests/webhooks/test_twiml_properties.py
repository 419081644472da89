"""Property: every reply template, given any strings at all, renders to well-formed TwiML.

Every variable of every template under prompts/replies/ gets an arbitrary
string from hypothesis (control characters, markup, astral characters,
huge and empty ones). A variable the template uses as an object (``business.name``,
``for line in hours``) gets an :class:`Anything`: a string whose attributes,
items and elements are arbitrary strings too. The TwiML built from the
result must parse, and keep no character XML forbids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jinja2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import meta

from bot.channels import profile_of
from bot.messages import Channel, Reply
from bot.templates import ReplyTemplates
from webhooks.twiml import render_twiml

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
REPLIES = sorted(p.name.split(".")[0] for p in (PROMPTS / "replies").glob("*.j2"))
FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class Anything(str):
    """A string that also has any attribute, item or element, each another arbitrary string."""

    pool: tuple[str, ...] = ("",)

    def _child(self, salt: object) -> Anything:
        value = Anything(self.pool[hash((str(self), str(salt))) % len(self.pool)])
        value.pool = self.pool
        return value

    def __getattr__(self, name: str) -> Anything:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._child(name)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._child(key)
        return str.__getitem__(self, key)

    # Compared with a number (``count > 1``), it counts as its length.
    def __gt__(self, other: object) -> bool:
        return len(self) > other if isinstance(other, int) else str.__gt__(self, other)  # type: ignore[operator]

    def __lt__(self, other: object) -> bool:
        return len(self) < other if isinstance(other, int) else str.__lt__(self, other)  # type: ignore[operator]

    def __ge__(self, other: object) -> bool:
        return len(self) >= other if isinstance(other, int) else str.__ge__(self, other)  # type: ignore[operator]

    def __le__(self, other: object) -> bool:
        return len(self) <= other if isinstance(other, int) else str.__le__(self, other)  # type: ignore[operator]

    def __hash__(self) -> int:
        return str.__hash__(self)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # Iterated (``for line in hours``), it is a list of two more of its kind.
        return iter([self._child(0), self._child(1)])


def variables(templates_dir: Path, name: str) -> set[str]:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir), autoescape=False)  # noqa: S701
    found: set[str] = set()
    for path in (templates_dir / "replies").glob(f"{name}*.j2"):
        source = path.read_text(encoding="utf-8")
        found |= meta.find_undeclared_variables(env.parse(source))
    return found


TEMPLATES = ReplyTemplates(PROMPTS)
VARIABLES = {name: variables(PROMPTS, name) for name in REPLIES}
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=200)


def test_every_reply_template_is_covered() -> None:
    assert len(REPLIES) >= 20 and "greeting" in REPLIES
    assert VARIABLES["greeting"] >= {"name", "business"}


@pytest.mark.parametrize("name", REPLIES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_strings_in_any_variable_render_valid_twiml(name: str, data: st.DataObject) -> None:
    pool = tuple(data.draw(st.lists(ANY_TEXT, min_size=1, max_size=6), label="strings"))
    context: dict[str, Any] = {}
    for index, variable in enumerate(sorted(VARIABLES[name])):
        value = Anything(pool[index % len(pool)])
        value.pool = pool
        context[variable] = value
    for channel in (Channel.SMS, Channel.WHATSAPP):
        text = TEMPLATES.render(name, channel, **context)
        twiml = render_twiml([profile_of(channel).prepare(Reply(text=text))])
        root = ElementTree.fromstring(twiml)  # noqa: S314 - our own output; well-formed, or this raises
        bodies = [m.text or "" for m in root.iter("Message")]
        assert len(bodies) == 1
        assert not FORBIDDEN.search(bodies[0])
        assert len(bodies[0]) <= 1600

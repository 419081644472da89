"""YAML composed into nodes that keep their source lines, and the strict reading of their values.

Transcripts are composed into nodes (not Python objects) and read by hand,
so that every key and value keeps its line and text values are taken as the
user wrote them (``user: yes`` sends "yes", not YAML's boolean ``True``).
Every error is a :class:`~bot.errors.TranscriptError` starting ``path:line:``.
:class:`NodeReader` knows the file and reads typed values; the transcript
format on top of it is :mod:`devtools.replay.reader`.

Example::

    reader = NodeReader(Path("a.yaml"))
    [document] = reader.compose("name: hi\nuser: yes\n")
    reader.text(reader.mapping(document, "the conversation").get("user"), "user")  # 'yes'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from bot.errors import TranscriptError
from devtools.replay.text import quote

_YAML_TAG = "tag:yaml.org,2002:"
_KNOWN_TAGS = ("str", "int", "float", "bool", "null", "timestamp", "map", "seq")
_DECIMAL = re.compile(r"\+?\d+")


@dataclass(frozen=True, slots=True)
class Scalar:
    """A scalar as written: its text, its short tag (``str``, ``int``, ``null`` ...) and line."""

    text: str
    tag: str  # short form for core tags ("str", "int", "null", ...), else the full tag
    line: int

    def describe(self) -> str:
        return "nothing" if self.tag == "null" else quote(self.text)


@dataclass(frozen=True, slots=True)
class Seq:
    """A YAML list and its line."""

    items: tuple[Node, ...]
    line: int

    def describe(self) -> str:
        return "a list"


@dataclass(frozen=True, slots=True)
class Map:
    """A YAML mapping: unique keys in source order, each with its line."""

    # (key, line of the key, value), in source order, keys unique.
    entries: tuple[tuple[str, int, Node], ...]
    line: int

    def describe(self) -> str:
        return "a mapping"

    def get(self, key: str) -> Node | None:
        for name, _, value in self.entries:
            if name == key:
                return value
        return None

    def key_line(self, key: str) -> int:
        for name, line, _ in self.entries:
            if name == key:
                return line
        return self.line

    def names(self) -> list[str]:
        return [name for name, _, _ in self.entries]


Node: TypeAlias = Scalar | Seq | Map

_YAML_HINTS = {
    "found unknown escape character": (
        "inside double quotes a backslash starts an escape; write regular expressions in single quotes, e.g. '\\d+ ?pm'"
    ),
    "found character '\\t' that cannot start any token": "YAML does not allow tabs; indent with spaces",
}


class NodeReader:
    """Composes one file's YAML into nodes and reads typed values; knows the path for errors.

    Example::

        reader = NodeReader(Path("a.yaml"))
        reader.integer(node, "replies", minimum=0)   # or TranscriptError("a.yaml:7: replies must be ...")
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, line: int, message: str) -> TranscriptError:
        return TranscriptError(f"{self.path}:{line}: {message}")

    # -- YAML ---------------------------------------------------------------

    def compose(self, text: str) -> list[Node]:
        try:
            raw = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise self._yaml_error(exc, text) from None
        converted: dict[int, Node] = {}
        documents: list[Node] = []
        for node in raw:
            doc = self._convert(node, converted, set())
            # An empty document (a leading or trailing ---) holds no conversation.
            if isinstance(doc, Scalar) and doc.tag == "null":
                continue
            documents.append(doc)
        return documents

    def _yaml_error(self, exc: Any, text: str) -> TranscriptError:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line = int(mark.line) + 1
        elif isinstance(getattr(exc, "position", None), int):  # yaml.reader.ReaderError
            line = text[: exc.position].count("\n") + 1
        else:
            line = 1
        problem = getattr(exc, "problem", None)
        character = getattr(exc, "character", None)  # yaml.reader.ReaderError
        if problem is None and isinstance(character, int | str):
            code = character if isinstance(character, int) else ord(character[:1] or "\0")
            problem = f"the control character U+{code:04X} is not allowed in YAML"
        problem = str(problem or exc)
        context = getattr(exc, "context", None)
        message = f"YAML syntax error: {problem}"
        if context:
            message += f" ({context})"
        for needle, hint in _YAML_HINTS.items():
            if needle in problem:
                message += f"; {hint}"
        return self.error(line, message)

    def _convert(self, node: Any, done: dict[int, Node], active: set[int]) -> Node:
        # Aliases share node objects: memoise so `&a`/`*a` bombs stay linear,
        # and refuse cycles (`&a [*a]`) instead of recursing forever.
        key = id(node)
        if key in done:
            return done[key]
        line = int(node.start_mark.line) + 1
        if key in active:
            raise self.error(line, "an alias refers to itself; transcripts cannot be recursive")
        tag = str(node.tag)
        short = tag[len(_YAML_TAG) :] if tag.startswith(_YAML_TAG) else tag
        if short not in _KNOWN_TAGS:
            raise self.error(line, f"unsupported YAML tag {tag}; transcripts use plain YAML values")
        result: Node
        if isinstance(node, yaml.ScalarNode):
            result = Scalar(str(node.value), short, line)
        elif isinstance(node, yaml.SequenceNode):
            active.add(key)
            result = Seq(tuple(self._convert(item, done, active) for item in node.value), line)
            active.discard(key)
        else:
            active.add(key)
            entries: list[tuple[str, int, Node]] = []
            lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = int(key_node.start_mark.line) + 1
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self.error(key_line, "a key must be a plain name, not a list or mapping")
                name = str(key_node.value)
                if name in lines:
                    raise self.error(key_line, f"duplicate key {name!r} (first given at line {lines[name]})")
                lines[name] = key_line
                entries.append((name, key_line, self._convert(value_node, done, active)))
            active.discard(key)
            result = Map(tuple(entries), line)
        done[key] = result
        return result

    # -- values -------------------------------------------------------------

    def mapping(self, node: Node, what: str) -> Map:
        if not isinstance(node, Map):
            raise self.error(node.line, f"{what} must be a mapping of keys, got {node.describe()}")
        return node

    def check_keys(self, node: Map, allowed: Sequence[str], where: str) -> None:
        for name, line, _ in node.entries:
            if name not in allowed:
                message = f"unknown key {name!r} in {where}"
                close = difflib.get_close_matches(name, allowed, n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
                message += f" (allowed: {', '.join(allowed)})"
                raise self.error(line, message)

    def text(self, node: Node, key: str, *, empty_ok: bool = False) -> str:
        """A text value exactly as written: ``yes`` stays "yes", ``1`` stays "1"."""
        if not isinstance(node, Scalar):
            raise self.error(node.line, f"{key} must be text, got {node.describe()}")
        if node.tag == "null":
            raise self.error(node.line, f'{key} needs a value (quote it, e.g. {key}: "null", to mean that text)')
        if not empty_ok and not node.text.strip():
            raise self.error(node.line, f"{key} must not be empty")
        return node.text

    def flag(self, node: Node, key: str) -> bool:
        if isinstance(node, Scalar) and node.tag == "bool":
            return node.text.lower() in ("true", "yes", "on")
        raise self.error(node.line, f"{key} must be true or false, got {node.describe()}")

    def integer(self, node: Node, key: str, *, minimum: int) -> int:
        # Plain decimal only: YAML 1.1 would read 010 as octal and 1:30 as 90.
        if isinstance(node, Scalar) and node.tag == "int" and _DECIMAL.fullmatch(node.text):
            value = int(node.text)
            if value >= minimum:
                return value
        raise self.error(node.line, f"{key} must be a whole number of at least {minimum}, got {node.describe()}")

    def number(self, node: Node, key: str, low: float, high: float) -> float:
        if isinstance(node, Scalar) and node.tag in ("int", "float"):
            try:
                value = float(node.text.replace("_", ""))
            except ValueError:
                value = float("nan")
            if low <= value <= high:
                return value
        raise self.error(node.line, f"{key} must be a number from {low:g} to {high:g}, got {node.describe()}")

    def pairs(self, node: Node, what: str) -> tuple[tuple[str, str], ...]:
        """A mapping of names to text values, in order (``slots:``, ``variables:``)."""
        named = self.mapping(node, what)
        return tuple((key, self.text(value, f"{what.rsplit('.', 1)[-1]}.{key}")) for key, _, value in named.entries)


def must(node: Node | None) -> Node:
    """``node``, known to be there (only called after checking presence; keeps mypy precise)."""
    assert node is not None
    return node

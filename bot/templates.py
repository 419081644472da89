"""The one Jinja2 environment for user-facing text and model prompts.

Templates live under ``prompts/``: replies in ``prompts/replies/`` with
optional per-channel variants (``booked.sms.j2`` beside ``booked.j2``),
model prompts in ``prompts/model/``. Every ``.j2`` file is compiled when
:class:`ReplyTemplates` is built, so a broken template stops start-up and
the hot path never touches the disk.

The environment is sandboxed (immutable), uses ``StrictUndefined`` (a typo
or a missing variable is an error, never an empty string) and does not
autoescape, since SMS and WhatsApp are plain text. User text is data only:
there is deliberately no API that renders a string as a template.

Example::

    templates = ReplyTemplates(Path("prompts"))
    templates.render("greeting", "sms", name=None, business=business)
    # 'Hi! This is Bright Smile Dental. ...'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.errors import TemplateError

REPLIES_DIR = "replies"
MODEL_DIR = "model"
SUFFIX = ".j2"


class ReplyTemplates:
    """All reply and prompt templates under one directory, compiled once.

    ``required`` names replies that must exist (base variant); a missing one
    fails construction, i.e. start-up, instead of a user's conversation.

    Example::

        templates = ReplyTemplates(Path("prompts"), required=["greeting", "error"])
        templates.has("greeting", "whatsapp")  # True: falls back to greeting.j2
        templates.render("error", "sms")
        # 'Sorry, something went wrong on our side. Please try again in a moment.'
    """

    def __init__(self, root: Path, *, required: Iterable[str] = ()) -> None:
        if not root.is_dir():
            raise TemplateError(
                f"template directory {root} does not exist (looked in {root.resolve()}): "
                "run from the project directory or set PROMPTS_DIR"
            )
        self._root = root
        self._env = ImmutableSandboxedEnvironment(
            loader=jinja2.FileSystemLoader(root),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,
            # Unbounded cache: {% include %} and {% import %} resolve from the
            # templates compiled below instead of reading the disk again.
            cache_size=-1,
        )
        self._templates: Mapping[str, jinja2.Template] = MappingProxyType(self._compile_all())
        missing = sorted(name for name in required if _reply_path(name) not in self._templates)
        if missing:
            where = root / REPLIES_DIR
            raise TemplateError(f"missing reply templates in {where}: {', '.join(missing)}")

    @property
    def names(self) -> frozenset[str]:
        """Every loaded template path, e.g. ``replies/greeting.j2``."""
        return frozenset(self._templates)

    def has(self, name: str, channel: str) -> bool:
        """True if :meth:`render` would find a template for ``name`` on ``channel``.

        Example::

            templates.has("greeting", "sms")  # True
            templates.has("no_such_reply", "sms")  # False
        """
        return self._lookup(name, channel) is not None

    def render(self, name: str, channel: str, /, **context: Any) -> str:
        """Render reply ``name`` for ``channel``, stripped of surrounding whitespace.

        Tries ``replies/{name}.{channel}.j2``, then ``replies/{name}.j2``.
        ``channel`` is a :class:`bot.messages.Channel` or its value.

        Example::

            templates.render("greeting", Channel.SMS, name="Ana", business=business)
            # 'Hi Ana! This is Bright Smile Dental. ...'

        Raises:
            TemplateError: no such template, an undefined variable (named in
                the message), or any other failure while rendering.
        """
        found = self._lookup(name, channel)
        if found is None:
            raise TemplateError(
                f"no reply template {name!r} for channel {channel!s}: "
                f"looked for {_reply_path(name, channel)} and {_reply_path(name)} in {self._root}"
            )
        path, template = found
        return _render(path, template, context)

    def render_prompt(self, name: str, /, **context: Any) -> str:
        """Render the model prompt ``prompts/model/{name}.j2``.

        Example::

            templates.render_prompt("fallback", business=business, history=turns)

        Raises:
            TemplateError: as for :meth:`render`.
        """
        path = f"{MODEL_DIR}/{name}{SUFFIX}"
        template = self._templates.get(path)
        if template is None:
            raise TemplateError(f"no model prompt template {path} in {self._root}")
        return _render(path, template, context)

    def compile_data(self, origin: str, source: str) -> DataTemplate:
        """Compile a template held in the business data (an FAQ answer), once, at start-up.

        Same sandbox and strictness as the files; ``origin`` names it in
        errors (``intents/business.yaml: faq.duration.answer``). Never for
        user text: that is always data.

        Example::

            answer = templates.compile_data("faq.duration.answer", "A {{ s }} takes 30 min.")
            answer.render(s="checkup")   # 'A checkup takes 30 min.'
        """
        try:
            return DataTemplate(origin, self._env.from_string(source))
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{origin}, line {exc.lineno}: {exc.message}") from exc

    def _lookup(self, name: str, channel: str) -> tuple[str, jinja2.Template] | None:
        for path in (_reply_path(name, channel), _reply_path(name)):
            template = self._templates.get(path)
            if template is not None:
                return path, template
        return None

    def _compile_all(self) -> dict[str, jinja2.Template]:
        compiled: dict[str, jinja2.Template] = {}
        for path in self._env.list_templates(filter_func=_is_template):
            try:
                compiled[path] = self._env.get_template(path)
            except jinja2.TemplateSyntaxError as exc:
                raise TemplateError(f"template {path}, line {exc.lineno}: {exc.message}") from exc
            except jinja2.TemplateError as exc:
                # e.g. an {% extends %} naming a file that does not exist.
                raise TemplateError(f"template {path}: {exc}") from exc
        return compiled


class DataTemplate:
    """A template from the business data, compiled by :meth:`ReplyTemplates.compile_data`."""

    def __init__(self, origin: str, template: jinja2.Template) -> None:
        self.origin = origin
        self._template = template

    def render(self, **context: Any) -> str:
        """Render with ``context``; a failure is a :class:`TemplateError` naming the origin."""
        return _render(self.origin, self._template, context)


def _reply_path(name: str, channel: str | None = None) -> str:
    variant = f".{channel!s}" if channel else ""
    return f"{REPLIES_DIR}/{name}{variant}{SUFFIX}"


def _is_template(path: str) -> bool:
    return path.endswith(SUFFIX) and not any(part.startswith(".") for part in path.split("/"))


def _render(path: str, template: jinja2.Template, context: Mapping[str, Any]) -> str:
    try:
        return template.render(context).strip()
    except jinja2.UndefinedError as exc:
        # StrictUndefined says e.g. "'name' is undefined": that names the variable.
        raise TemplateError(f"template {path}: {exc.message}") from exc
    except Exception as exc:
        # Any failure inside a template (sandbox refusal, a filter's
        # TypeError) is a template bug; the engine answers with error.j2.
        raise TemplateError(f"template {path}: {type(exc).__name__}: {exc}") from exc

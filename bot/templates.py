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

Languages: the business's own language (English) lives in ``prompts/replies/``;
every other language it answers in (``languages:`` in ``business.yaml``) has
the same files under ``prompts/replies/<code>/`` (``es/greeting.j2``,
``es/booked.whatsapp.j2``). One rule, checked at start-up: every reply file
has its translation, except the notices to staff (:func:`is_staff_reply`,
always in the business's language); a missing one stops start-up naming it,
so nobody gets English by surprise. :meth:`ReplyTemplates.in_language`
gives the view a conversation in that language renders through.

Example::

    templates = ReplyTemplates(Path("prompts"))
    templates.render("greeting", "sms", name=None, business=business)
    # 'Hi! This is Bright Smile Dental. ...'
    templates.in_language("es").render("greeting", "sms", name=None, business=business)
    # '¡Hola! Soy el asistente de Bright Smile Dental. ...'
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from bot.errors import TemplateError
from bot.languages.profile import DEFAULT_LANGUAGE

REPLIES_DIR = "replies"
MODEL_DIR = "model"
SUFFIX = ".j2"
#: Replies to staff, not to the texter: always in the business's own language, never translated.
#: Besides these, every reply with the word "staff" in its name (``handoff_staff_urgent``).
STAFF_REPLIES: frozenset[str] = frozenset({"handoff_forward"})


def is_staff_reply(name: str) -> bool:
    """Whether reply ``name`` goes to staff (never translated).

    >>> is_staff_reply("handoff_staff_urgent"), is_staff_reply("optout_staff"), is_staff_reply("handoff")
    (True, True, False)
    """
    return name in STAFF_REPLIES or "staff" in name.split("_")


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

    def __init__(self, root: Path, *, required: Iterable[str] = (), languages: Iterable[str] = ()) -> None:
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
        #: The language this view renders in (None: the business's own, ``prompts/replies/``).
        self.language: str | None = None
        self.check_languages(languages)

    def check_languages(self, languages: Iterable[str]) -> None:
        """Every reply file must have its translation for each of ``languages`` (the default skipped).

        Raises :class:`TemplateError` naming the first missing one, e.g.
        ``missing translation: prompts/replies/es/booked.whatsapp.j2 (of replies/booked.whatsapp.j2)``.
        """
        for language in languages:
            if language == DEFAULT_LANGUAGE:
                continue
            for path in sorted(self._templates):
                parts = path.split("/")
                if len(parts) != 2 or parts[0] != REPLIES_DIR or is_staff_reply(parts[1].split(".")[0]):
                    continue
                wanted = f"{REPLIES_DIR}/{language}/{parts[1]}"
                if wanted not in self._templates:
                    raise TemplateError(
                        f"missing translation: {self._root / wanted} (of {path}); the business answers in "
                        f"{language!r} (languages: in business.yaml), so every reply needs one"
                    )

    def in_language(self, language: str) -> ReplyTemplates:
        """The view that renders replies in ``language`` (``prompts/replies/<language>/``).

        Staff notices (:func:`is_staff_reply`) stay in the business's own
        language; the default language is this object itself.

        Example::

            templates.in_language("es").render("thanks", "sms")   # '¡De nada! ...'
        """
        if language == (self.language or DEFAULT_LANGUAGE):
            return self
        view = copy.copy(self)
        view.language = None if language == DEFAULT_LANGUAGE else language
        return view

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
        paths = (_reply_path(name, channel), _reply_path(name))
        if self.language is not None and not is_staff_reply(name):
            # No fallback to English: a translation's absence is caught at start-up.
            paths = (_reply_path(name, channel, self.language), _reply_path(name, None, self.language))
        for path in paths:
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


def _reply_path(name: str, channel: str | None = None, language: str | None = None) -> str:
    variant = f".{channel!s}" if channel else ""
    folder = f"{REPLIES_DIR}/{language}" if language else REPLIES_DIR
    return f"{folder}/{name}{variant}{SUFFIX}"


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

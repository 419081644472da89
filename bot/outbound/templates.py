"""The WhatsApp content-template registry: ``intents/templates.yaml`` as data.

Each entry names an approved content template (its ``ContentSid``), the
ordered names of its variables, the approved text (``body``, with Twilio's
``{{1}}`` placeholders, so the simulator and the docs show what users see)
and an ``sms_fallback``: a Jinja2 text over the same variable names, sent on
SMS where content templates do not exist. Everything is validated when the
file is loaded, so a typo stops start-up instead of a send.

Example (``intents/templates.yaml``)::

    appointment_reminder:
      content_sid: HX0123456789abcdef0123456789abcdef
      type: twilio/quick-reply
      variables: [name, service, time]
      body: "Hi {{1}}, a reminder of your {{2}} on {{3}}."
      buttons: [{id: confirm, title: Confirm}, {id: reschedule, title: Reschedule}]
      sms_fallback: "Hi {{ name }}, a reminder of your {{ service }} on {{ time }}."

and in code::

    registry = ContentTemplates.load(Path("intents/templates.yaml"))
    registry.render_variables("appointment_reminder",
                              {"name": "Ana", "service": "cleaning", "time": "Tue 3pm"})
    # {"1": "Ana", "2": "cleaning", "3": "Tue 3pm"}
    registry.render_sms("appointment_reminder", {...})  # the fallback text
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import jinja2
from jinja2 import meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator, model_validator

from bot.datafile import read_yaml_mapping, validation_problems
from bot.errors import ConfigError, TemplateError

#: Twilio refuses a rendered template over this many characters (63021).
MAX_RENDERED: Final = 1024
#: ContentVariables holds at most 100 pairs.
MAX_VARIABLES: Final = 100

ContentType = Literal[
    "twilio/text",
    "twilio/media",
    "twilio/quick-reply",
    "twilio/call-to-action",
    "twilio/list-picker",
    "twilio/card",
    "whatsapp/card",
    "whatsapp/authentication",
]
_WITH_BUTTONS: Final = frozenset({"twilio/quick-reply", "twilio/call-to-action", "twilio/card", "whatsapp/card"})
_LIST: Final = "twilio/list-picker"
#: WhatsApp's limits for a list picker (Twilio's Content API docs): at most 10
#: items, an item's title 24 characters, its description 72, the button 20.
LIST_MAX_ITEMS: Final = 10
LIST_ITEM_MAX: Final = 24
LIST_DESCRIPTION_MAX: Final = 72
LIST_BUTTON_MAX: Final = 20
#: WhatsApp shows at most three quick-reply buttons in a session.
QUICK_REPLY_MAX: Final = 3
_PLACEHOLDER = re.compile(r"\{\{\s*([0-9]+)\s*\}\}")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Button(BaseModel):
    """A quick-reply button: ``id`` comes back as ``ButtonPayload``, ``title`` as ``ButtonText``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    title: str = Field(min_length=1)


class ListItem(BaseModel):
    """A list-picker item: ``id`` comes back as ``ListId``, ``item`` (its title) as ``ListTitle``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    item: str = Field(min_length=1)
    description: str = ""


class ContentTemplate(BaseModel):
    """One registry entry. Build a registry with :meth:`ContentTemplates.load`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    content_sid: str = Field(pattern=r"^HX[0-9a-fA-F]{32}$")
    type: ContentType = "twilio/text"
    variables: tuple[str, ...] = ()
    body: str = Field(min_length=1)
    buttons: tuple[Button, ...] = ()
    #: ``twilio/list-picker``: the button that opens the list, and the list's items.
    list_button: str | None = None
    items: tuple[ListItem, ...] = ()
    sms_fallback: str = Field(min_length=1)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not _NAME.match(v)]
        if bad:
            raise ValueError(f"variable names must be lower_snake_case: {', '.join(bad)}")
        if len(set(value)) != len(value):
            raise ValueError("variable names must be unique")
        if len(value) > MAX_VARIABLES:
            raise ValueError(f"at most {MAX_VARIABLES} variables")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ContentTemplate:
        if self.buttons and self.type not in _WITH_BUTTONS:
            raise ValueError(f"buttons need a type with buttons ({', '.join(sorted(_WITH_BUTTONS))})")
        if len(self.buttons) > 10:
            raise ValueError("at most 10 buttons")
        if (self.type == _LIST) != bool(self.items) or (self.type == _LIST) != (self.list_button is not None):
            raise ValueError(f"{_LIST} needs list_button and items, and only it has them")
        if len(self.items) > LIST_MAX_ITEMS:
            raise ValueError(f"at most {LIST_MAX_ITEMS} list items")
        # Twilio numbers variables 1..n and every one must be used somewhere.
        used = {int(n) for text in self._texts() for n in _PLACEHOLDER.findall(text)}
        expected = set(range(1, len(self.variables) + 1))
        if used != expected:
            raise ValueError(
                f"placeholders {{{{n}}}} in body/buttons must be exactly 1..{len(self.variables)} "
                f"(one per variable), found {sorted(used) or 'none'}"
            )
        return self

    def _texts(self) -> Iterator[str]:
        yield self.body
        for button in self.buttons:
            yield button.title
            yield button.id
        if self.list_button is not None:
            yield self.list_button
        for item in self.items:
            yield from (item.id, item.item, item.description)

    def render_body(self, numbered: Mapping[str, str]) -> str:
        """The approved text with ``{{n}}`` replaced: what a WhatsApp user reads."""
        return _PLACEHOLDER.sub(lambda m: numbered.get(m.group(1), m.group(0)), self.body)


_REGISTRY_FILE: Final = TypeAdapter(dict[str, ContentTemplate])


class ContentTemplates:
    """The registry: content templates by name, validated, with compiled SMS fallbacks.

    Example::

        registry = ContentTemplates.load(Path("intents/templates.yaml"))
        "welcome_back" in registry  # True
        registry.get("welcome_back").content_sid
    """

    def __init__(self, templates: Iterable[ContentTemplate] = ()) -> None:
        self._templates: dict[str, ContentTemplate] = {}
        # The fallbacks are our own data, never user text; sandboxed and
        # strict anyway, like every other template in the project.
        self._env = ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self._fallbacks: dict[str, jinja2.Template] = {}
        sids: dict[str, str] = {}
        for template in templates:
            if template.name in self._templates:
                raise TemplateError(f"content template {template.name!r} is defined twice")
            if sids.setdefault(template.content_sid.lower(), template.name) != template.name:
                raise TemplateError(
                    f"content templates {sids[template.content_sid.lower()]!r} and {template.name!r} "
                    f"share ContentSid {template.content_sid}"
                )
            self._fallbacks[template.name] = self._compile_fallback(template)
            self._templates[template.name] = template

    @classmethod
    def load(cls, path: Path) -> ContentTemplates:
        """Read and validate a registry file; any problem is one :class:`TemplateError`.

        The message names the file and the template (``intents/templates.yaml:
        appointment_reminder.content_sid: ...``).
        """
        try:
            data = read_yaml_mapping(path)
        except ConfigError as exc:
            raise TemplateError(str(exc)) from None
        for name, spec in data.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise TemplateError(f"{path}: {name!r}: template names must be lower_snake_case")
            if isinstance(spec, dict):
                spec["name"] = name  # the key is the name; errors then read "reminder.content_sid: ..."
        try:
            templates = _REGISTRY_FILE.validate_python(data)
        except ValidationError as exc:
            raise TemplateError(str(validation_problems(path, exc))) from None
        try:
            return cls(templates.values())
        except TemplateError as exc:
            raise TemplateError(f"{path}: {exc}") from None

    def _compile_fallback(self, template: ContentTemplate) -> jinja2.Template:
        try:
            names = meta.find_undeclared_variables(self._env.parse(template.sms_fallback))
            compiled = self._env.from_string(template.sms_fallback)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{template.name}.sms_fallback: {exc.message} (line {exc.lineno})") from None
        unknown = sorted(names - set(template.variables))
        if unknown:
            raise TemplateError(
                f"{template.name}.sms_fallback uses {', '.join(unknown)}, not among its variables "
                f"({', '.join(template.variables) or 'none'})"
            )
        return compiled

    # -- lookups ---------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._templates

    def __iter__(self) -> Iterator[ContentTemplate]:
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._templates)

    def get(self, name: str) -> ContentTemplate:
        """The template called ``name``, or :class:`TemplateError`."""
        try:
            return self._templates[name]
        except KeyError:
            known = ", ".join(sorted(self._templates)) or "none"
            raise TemplateError(f"unknown content template {name!r} (known: {known})") from None

    # -- rendering ---------------------------------------------------------------
    def values_for(self, name: str, values: Mapping[str, Any]) -> dict[str, str]:
        """Check ``values`` against the template's variables; return them as clean strings.

        Every variable must be given, non-blank, and nothing else may be given
        (a misspelt name would otherwise be dropped silently).
        """
        template = self.get(name)
        missing = [v for v in template.variables if v not in values]
        extra = sorted(set(values) - set(template.variables))
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"missing {', '.join(missing)}")
            if extra:
                problems.append(f"unknown {', '.join(extra)}")
            raise TemplateError(f"content template {name!r}: {'; '.join(problems)}")
        clean = {v: str(values[v]).strip() for v in template.variables}
        blank = [v for v, text in clean.items() if not text]
        if blank:
            raise TemplateError(f"content template {name!r}: empty value for {', '.join(blank)}")
        return clean

    def render_variables(self, name: str, values: Mapping[str, Any]) -> dict[str, str]:
        """``values`` by name → Twilio's ``ContentVariables`` by position (``{"1": .., "2": ..}``).

        Raises :class:`TemplateError` on a missing, unknown or blank value, or
        when the rendered template would exceed 1024 characters (Twilio 63021).
        """
        template = self.get(name)
        clean = self.values_for(name, values)
        numbered = {str(i): clean[v] for i, v in enumerate(template.variables, 1)}
        rendered = template.render_body(numbered)
        if len(rendered) > MAX_RENDERED:
            raise TemplateError(
                f"content template {name!r} renders to {len(rendered)} characters; the limit is {MAX_RENDERED}"
            )
        return numbered

    def content_variables(self, name: str, values: Mapping[str, Any]) -> str:
        """:meth:`render_variables` as the JSON string the API takes."""
        return json.dumps(self.render_variables(name, values), ensure_ascii=False, separators=(",", ":"))

    def render_sms(self, name: str, values: Mapping[str, Any]) -> str:
        """The SMS fallback text for ``name`` with ``values``."""
        clean = self.values_for(name, values)
        try:
            return self._fallbacks[name].render(**clean).strip()
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{name}.sms_fallback: {exc}") from exc

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

Another language's variant of a template sits under it, keyed by the
language's code (``es:``): its own ``content_sid`` (a template approved in
that language), ``body``, button or item titles and ``sms_fallback``; the
type, the variables and the button ids are the template's. The template
itself is the business's own language (:data:`~bot.languages.profile.DEFAULT_LANGUAGE`)::

    appointment_reminder:
      ...
      es:
        content_sid: HX...
        body: "Hola {{1}}, le recordamos su cita de {{2}} el {{3}}."
        buttons: [{id: confirm, title: Confirmar}, {id: reschedule, title: Cambiar hora}]
        sms_fallback: "Hola {{ name }}, le recordamos su cita de {{ service }} el {{ time }}."

    registry.get("appointment_reminder", "es").content_sid   # the Spanish template's
    registry.check_languages(["appointment_reminder"], ["en", "es"])   # TemplateError naming a missing one
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
from bot.languages.profile import DEFAULT_LANGUAGE, PROFILES, profile_for

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
#: A key under a template that is a language's variant (``es:``), not a field.
_LANGUAGE = re.compile(r"^[a-z]{2}$")
#: What a language's variant says in its own words; the rest (type, variables, ids) is the template's.
_VARIANT_KEYS: Final = frozenset({"content_sid", "body", "buttons", "list_button", "items", "sms_fallback"})


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
    #: A language's variant (``es``); None: the template in the business's own language.
    language: str | None = None
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

    @property
    def ref(self) -> str:
        """How errors and listings name it: ``appointment_reminder``, ``appointment_reminder.es``."""
        return self.name if self.language is None else f"{self.name}.{self.language}"

    def render_body(self, numbered: Mapping[str, str]) -> str:
        """The approved text with ``{{n}}`` replaced: what a WhatsApp user reads."""
        return _PLACEHOLDER.sub(lambda m: numbered.get(m.group(1), m.group(0)), self.body)


_REGISTRY_FILE: Final = TypeAdapter(dict[str, ContentTemplate])
_Key = tuple[str, str | None]


class ContentTemplates:
    """The registry: content templates by name (and language), validated, with compiled SMS fallbacks.

    Example::

        registry = ContentTemplates.load(Path("intents/templates.yaml"))
        "welcome_back" in registry  # True
        registry.get("welcome_back").content_sid
        registry.get("appointment_reminder", "es").content_sid   # its Spanish variant's
    """

    def __init__(self, templates: Iterable[ContentTemplate] = (), *, source: Path | None = None) -> None:
        #: Where the registry was read from (errors name it); None when built in code.
        self.source = source
        # (name, None): the template in the business's own language; (name, "es"): a variant.
        self._templates: dict[_Key, ContentTemplate] = {}
        # The fallbacks are our own data, never user text; sandboxed and
        # strict anyway, like every other template in the project.
        self._env = ImmutableSandboxedEnvironment(
            undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        self._fallbacks: dict[_Key, jinja2.Template] = {}
        sids: dict[str, str] = {}
        for template in templates:
            key = (template.name, template.language)
            if key in self._templates:
                raise TemplateError(f"content template {template.ref!r} is defined twice")
            if sids.setdefault(template.content_sid.lower(), template.ref) != template.ref:
                raise TemplateError(
                    f"content templates {sids[template.content_sid.lower()]!r} and {template.ref!r} "
                    f"share ContentSid {template.content_sid}"
                )
            self._fallbacks[key] = self._compile_fallback(template)
            self._templates[key] = template
        for template in self._templates.values():
            if template.language is not None:
                self._check_variant(template)

    @classmethod
    def load(cls, path: Path) -> ContentTemplates:
        """Read and validate a registry file; any problem is one :class:`TemplateError`.

        The message names the file and the template (``intents/templates.yaml:
        appointment_reminder.content_sid: ...``, ``appointment_reminder.es.body: ...``).
        """
        try:
            data = read_yaml_mapping(path)
        except ConfigError as exc:
            raise TemplateError(str(exc)) from None
        variants: dict[str, Any] = {}
        for name, spec in data.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise TemplateError(f"{path}: {name!r}: template names must be lower_snake_case")
            if isinstance(spec, dict):
                spec["name"] = name  # the key is the name; errors then read "reminder.content_sid: ..."
                variants.update(_variants_of(path, name, spec))
        try:
            templates = _REGISTRY_FILE.validate_python(data)
            translated = _REGISTRY_FILE.validate_python(variants)
        except ValidationError as exc:
            raise TemplateError(str(validation_problems(path, exc))) from None
        try:
            return cls([*templates.values(), *translated.values()], source=path)
        except TemplateError as exc:
            raise TemplateError(f"{path}: {exc}") from None

    def _compile_fallback(self, template: ContentTemplate) -> jinja2.Template:
        try:
            names = meta.find_undeclared_variables(self._env.parse(template.sms_fallback))
            compiled = self._env.from_string(template.sms_fallback)
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(f"{template.ref}.sms_fallback: {exc.message} (line {exc.lineno})") from None
        unknown = sorted(names - set(template.variables))
        if unknown:
            raise TemplateError(
                f"{template.ref}.sms_fallback uses {', '.join(unknown)}, not among its variables "
                f"({', '.join(template.variables) or 'none'})"
            )
        return compiled

    def _check_variant(self, variant: ContentTemplate) -> None:
        """A variant says the same thing in other words: same type, variables, button and item ids."""
        base = self._templates.get((variant.name, None))
        if base is None:
            raise TemplateError(f"{variant.ref}: a variant of no template {variant.name!r}")
        ids = [b.id for b in base.buttons], [i.id for i in base.items]
        if (variant.type, variant.variables) != (base.type, base.variables) or \
                ([b.id for b in variant.buttons], [i.id for i in variant.items]) != ids:
            raise TemplateError(
                f"{variant.ref}: its buttons and items must be {variant.name}'s, ids "
                f"{', '.join(ids[0] + ids[1]) or 'none'} in that order (only titles are translated)"
            )

    # -- lookups ---------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return (name, None) in self._templates

    def __iter__(self) -> Iterator[ContentTemplate]:
        """Every template and every language's variant (each its own ContentSid)."""
        return iter(self._templates.values())

    def __len__(self) -> int:
        return len(self._templates)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(name for name, _ in self._templates)

    def get(self, name: str, language: str | None = None) -> ContentTemplate:
        """The template called ``name`` in ``language`` (None: the business's own), or :class:`TemplateError`."""
        key = (name, None if language == DEFAULT_LANGUAGE else language)
        found = self._templates.get(key)
        if found is not None:
            return found
        if name in self:
            raise TemplateError(f"content template {name!r} has no {language!r} variant ({name}.{language})")
        known = ", ".join(sorted(self.names)) or "none"
        raise TemplateError(f"unknown content template {name!r} (known: {known})")

    def check_languages(self, names: Iterable[str], languages: Iterable[str]) -> None:
        """Every template of ``names`` (those registered) must have a variant in each of ``languages``.

        For the templates the bot sends on its own (reminders, follow-ups,
        recall): a conversation in Spanish gets the Spanish variant, so a
        missing one is a start-up error, never an English message by surprise::

            missing translation: intents/templates.yaml: appointment_reminder has no 'es' variant ...
        """
        where = f"{self.source}: " if self.source is not None else ""
        for name in names:
            for language in languages:
                if name in self and language != DEFAULT_LANGUAGE and (name, language) not in self._templates:
                    raise TemplateError(
                        f"missing translation: {where}{name} has no {language!r} variant (an {language}: block "
                        f"under it); the business answers in {language!r} (languages: in business.yaml) and "
                        f"the bot sends {name} on its own"
                    )

    # -- rendering ---------------------------------------------------------------
    def values_for(self, name: str, values: Mapping[str, Any]) -> dict[str, str]:
        """Check ``values`` against the template's variables; return them as clean strings.

        Every variable must be given, non-blank, and nothing else may be given
        (a misspelt name would otherwise be dropped silently). A template's
        variants have its variables.
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

    def render_variables(self, name: str, values: Mapping[str, Any], language: str | None = None) -> dict[str, str]:
        """``values`` by name → Twilio's ``ContentVariables`` by position (``{"1": .., "2": ..}``).

        Raises :class:`TemplateError` on a missing, unknown or blank value, or
        when the rendered template (``language``'s variant) would exceed 1024
        characters (Twilio 63021).
        """
        template = self.get(name, language)
        clean = self.values_for(name, values)
        numbered = {str(i): clean[v] for i, v in enumerate(template.variables, 1)}
        rendered = template.render_body(numbered)
        if len(rendered) > MAX_RENDERED:
            raise TemplateError(
                f"content template {template.ref!r} renders to {len(rendered)} characters; "
                f"the limit is {MAX_RENDERED}"
            )
        return numbered

    def content_variables(self, name: str, values: Mapping[str, Any], language: str | None = None) -> str:
        """:meth:`render_variables` as the JSON string the API takes."""
        return json.dumps(self.render_variables(name, values, language), ensure_ascii=False, separators=(",", ":"))

    def render_sms(self, name: str, values: Mapping[str, Any], language: str | None = None) -> str:
        """The SMS fallback text for ``name`` (``language``'s variant) with ``values``.

        A variant's text is written as every SMS reply in its language is
        (:meth:`~bot.languages.profile.LanguageProfile.for_sms`): without the
        accents GSM-7 lacks when that makes it all GSM-7 ("sábado" -> "sabado").
        """
        template = self.get(name, language)
        clean = self.values_for(name, values)
        try:
            text = self._fallbacks[(template.name, template.language)].render(**clean).strip()
        except jinja2.TemplateError as exc:
            raise TemplateError(f"{template.ref}.sms_fallback: {exc}") from exc
        return text if template.language is None else profile_for(template.language).for_sms(text)


def _variants_of(path: Path, name: str, spec: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Take the language blocks (``es:``) out of ``spec``: each a template of its own, named ``name.es``.

    A variant gives only its words (:data:`_VARIANT_KEYS`); the type and the variables are the template's.
    """
    for code in [key for key in spec if isinstance(key, str) and _LANGUAGE.match(key)]:
        words = spec.pop(code)
        if code not in PROFILES or code == DEFAULT_LANGUAGE:
            known = ", ".join(c for c in PROFILES if c != DEFAULT_LANGUAGE)
            raise TemplateError(f"{path}: {name}.{code}: not a language with a profile (variants: {known}; "
                                f"the template itself is {DEFAULT_LANGUAGE!r})")
        if not isinstance(words, dict):
            raise TemplateError(f"{path}: {name}.{code}: a language's variant is a mapping "
                                f"({', '.join(sorted(_VARIANT_KEYS))})")
        other = sorted(str(k) for k in words if k not in _VARIANT_KEYS)
        if other:
            raise TemplateError(f"{path}: {name}.{code}: {', '.join(other)} cannot differ from {name}'s "
                                f"(a variant gives {', '.join(sorted(_VARIANT_KEYS))})")
        inherited = {k: spec[k] for k in ("type", "variables") if k in spec}
        yield f"{name}.{code}", {**inherited, **words, "name": name, "language": code}

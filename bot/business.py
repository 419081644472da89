"""The business the bot works for, loaded from ``intents/business.yaml``.

Everything the bot states about the business (hours, address, prices) comes
from this one typed, frozen model, so a user of the project changes the
business by editing data, never code. Loading validates the whole file and
turns every problem into one :class:`~bot.errors.ConfigError` that names the
file and the field (``intents/business.yaml: services.cleaning.price: ...``).

Example::

    business = load_business(Path("intents/business.yaml"))
    business.service("teeth cleaning").key         # "cleaning"
    business.service("check-up").price_text        # "$80"
    when = datetime(2026, 3, 2, 16, 30, tzinfo=business.tz)
    business.is_open_at(when, 60)                  # False: would end 17:30
    [(line.days, line.hours) for line in business.opening_hours_text()]
    # [("Mon-Fri", "8am-5pm"), ("Sat", "9am-1pm"), ("Sun", "closed")]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from bot.confirmations.schedule import AfterVisit, Recall, ReminderStep
from bot.datafile import read_yaml_mapping, validation_problems
from bot.hours import WEEKDAYS, HoursLine, OpeningHours, TimeRange, Weekday
from bot.languages.profile import DEFAULT_LANGUAGE, PROFILES
from bot.quiet_hours import QuietHours

# The opening hours (bot/hours.py) and the YAML reading (bot/datafile.py) are modules of their
# own; importing them from here keeps working.
__all__ = [
    "DEFAULT_RESOURCE",
    "WEEKDAYS",
    "Business",
    "FaqEntry",
    "FaqOffer",
    "HoursLine",
    "OpeningHours",
    "Resource",
    "Service",
    "TimeRange",
    "Weekday",
    "Words",
    "load_business",
    "read_yaml_mapping",
    "validation_problems",
]

_PHONE = re.compile(r"^\+[0-9][0-9 ().-]{6,20}$")
_CURRENCY_SYMBOLS = {"USD": "$", "CAD": "$", "AUD": "$", "EUR": "€", "GBP": "£"}


def _normalise_name(text: str) -> str:
    """Lower-case, hyphens and runs of spaces to one space ("Check-Up" -> "check up")."""
    return " ".join(text.lower().replace("-", " ").split())


#: The one resource of a business that lists none: every service books it,
#: so a business without ``resources:`` books one appointment at a time.
DEFAULT_RESOURCE = "default"
_RESOURCE_KEY = r"^[A-Za-z0-9][A-Za-z0-9 _.:-]*$"


class Resource(BaseModel):
    """Something an appointment holds for its time: a chair, a provider, a stylist.

    Example (``business.yaml``)::

        resources:
          chair-1: {label: Chair 1}
          chair-2: {label: Chair 2}
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(pattern=_RESOURCE_KEY)
    label: str = Field(min_length=1)
    # Other ways people name it ("jessica"); its key and label count too.
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every way people name it, lower case: key, label, aliases."""
        return tuple(dict.fromkeys(n.casefold() for n in (self.key, self.label, *self.aliases)))


class Words(BaseModel):
    """The business's own words for what the engine talks about (staff emails, the model prompt).

    Example (``business.yaml``)::

        words: {customer: patient, emergency: dental emergency}
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: Who texts the bot: a patient, a client, a guest.
    customer: str = Field(default="customer", min_length=1)
    #: What an urgent message (``intents/safety.yaml``'s emergency rules) is about.
    emergency: str = Field(default="emergency", min_length=1)


class Service(BaseModel):
    """One bookable service.

    Example::

        svc = business.service("cavity")
        (svc.key, svc.duration_minutes, svc.price_text)  # ("filling", 60, "from $150")
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str
    label: str
    duration_minutes: int = Field(gt=0, le=24 * 60)
    price: Decimal = Field(ge=0)
    # True when ``price`` is a starting price ("from $150"), not a fixed one.
    price_from: bool = False
    aliases: tuple[str, ...] = ()
    currency: str = "USD"
    # The resources that can do it, in order of preference; empty: every one.
    resources: tuple[str, ...] = ()

    @property
    def price_text(self) -> str:
        """The price as people read it: ``$120``, ``from $150``."""
        return f"from {self.price_amount}" if self.price_from else self.price_amount

    @property
    def price_amount(self) -> str:
        """The amount alone, ``$150``: another language's template says its own "from" ("desde")."""
        symbol = _CURRENCY_SYMBOLS.get(self.currency, f"{self.currency} ")
        return f"{symbol}{self.price:,.2f}".removesuffix(".00")

    @property
    def names(self) -> tuple[str, ...]:
        """Every normalised way to name this service: key, label and aliases."""
        seen = dict.fromkeys(_normalise_name(n) for n in (self.key, self.label, *self.aliases))
        return tuple(seen)


class FaqOffer(BaseModel):
    """What a "yes" right after an FAQ answer starts: an intent, and a service to seed it with."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: str = Field(min_length=1)
    service: str | None = None


class FaqEntry(BaseModel):
    """One frequently asked question: the ways people ask it and the answer template.

    ``answer`` is a Jinja2 template (compiled once at start-up, sandboxed)
    rendered with ``business``, ``service`` (the service the message named,
    or None), ``services``, ``hours``, ``opening`` (open now, next opening)
    and ``reminder_lead_hours``.

    Example::

        business.faq["duration"].questions[0]   # 'how long does a checkup take'
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    questions: tuple[str, ...] = Field(min_length=1)
    answer: str = Field(min_length=1)
    # When the answer ends with a yes/no question ("Want to book?"): what a "yes" starts.
    offer: FaqOffer | None = None


class Business(BaseModel):
    """The business: identity, time zone, opening hours and services.

    Build it with :func:`load_business`; it is frozen and safe to share.

    Example::

        business.tz                                   # ZoneInfo("America/New_York")
        business.service("whiten").duration_minutes   # 90
        business.is_open_at(datetime(2026, 3, 8, 10, tzinfo=business.tz), 30)  # Sunday: False
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    # What the business is, for a sentence about it: "a dental clinic" (the model prompt).
    kind: str = Field(default="business", min_length=1)
    words: Words = Field(default_factory=Words)
    timezone: str
    address: str = Field(min_length=1)
    phone: str
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # How people write numeric dates here: "3/14" is March 14 in the US (MDY).
    date_order: Literal["MDY", "DMY", "YMD"] = "MDY"
    hours: OpeningHours
    # Keyed by canonical name, in file order (dicts keep insertion order).
    services: Mapping[str, Service] = Field(min_length=1)
    # Frequently asked questions (bot/faq.py), keyed by a short name, in file order.
    faq: Mapping[str, FaqEntry] = Field(default_factory=dict)
    # Services other businesses offer and this one does not: a model answer naming
    # one is discarded (bot/nlu/grounding.py), as is a price or time not in this file.
    not_offered: tuple[str, ...] = ()
    # What appointments hold (chairs, providers, stylists), in order of
    # preference; none: one implicit resource, one appointment at a time.
    resources: Mapping[str, Resource] = Field(default_factory=dict)
    # When messages the bot starts may reach a phone (bot/quiet_hours.py).
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    # The languages the business answers in, its files' own (English) first;
    # the others are read from intents/<code>/ and prompts/replies/<code>/ (docs/languages.md).
    languages: tuple[str, ...] = ("en",)
    # A bot number whose conversations start in another language (WhatsApp, voice): {"+15005550007": es}.
    language_numbers: Mapping[str, str] = Field(default_factory=dict)
    # Reminders, follow-ups after a visit and recall (bot/confirmations/schedule.py, docs/confirmations.md).
    reminders: tuple[ReminderStep, ...] | None = None
    after_visit: AfterVisit = Field(default_factory=AfterVisit)
    recall: Recall = Field(default_factory=Recall)

    _tz: ZoneInfo = PrivateAttr()
    # The language this view of the business speaks (labels, FAQ): see bot/languages/business.py.
    _language: str = PrivateAttr(default="en")
    # Reads the language's date and time words the way slot extraction does (None: English).
    _slot_reader: Callable[[str], str] | None = PrivateAttr(default=None)
    _by_name: dict[str, Service] = PrivateAttr()
    _finder: re.Pattern[str] = PrivateAttr()
    _resource_finders: tuple[tuple[str, re.Pattern[str]], ...] = PrivateAttr()

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like America/New_York)") from None
        return value

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str) -> str:
        digits = re.sub(r"\D", "", value)
        if not _PHONE.match(value.strip()) or not 8 <= len(digits) <= 15:
            raise ValueError('must be an international number like "+1 555 010 0199"')
        return value.strip()

    @field_validator("services", mode="before")
    @classmethod
    def _services(cls, value: Any, info: ValidationInfo) -> Any:
        # The key in the file is the service's canonical name; copy it (and
        # the business currency) into each service so a Service stands alone.
        if not isinstance(value, dict):
            return value  # pydantic reports the wrong type itself
        currency = info.data.get("currency", "USD")
        return {
            key: {"currency": currency, **spec, "key": str(key)} if isinstance(spec, dict) else spec
            for key, spec in value.items()
        }

    @field_validator("resources", mode="before")
    @classmethod
    def _resources(cls, value: Any) -> Any:
        # As for services: the key in the file is the resource's name.
        if not isinstance(value, dict):
            return value
        return {key: {"label": str(key), **(spec or {}), "key": str(key)} if isinstance(spec, dict | None) else spec
                for key, spec in value.items()}

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        known = ", ".join(PROFILES)
        if not value or value[0] != DEFAULT_LANGUAGE:
            raise ValueError(f"must start with {DEFAULT_LANGUAGE!r}, the language of the business's own files")
        for code in value:
            if code not in PROFILES:
                raise ValueError(f"unknown language {code!r} (known: {known})")
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value

    @model_validator(mode="after")
    def _number_languages(self) -> Business:
        for number, code in self.language_numbers.items():
            if code not in self.languages:
                raise ValueError(f"language_numbers.{number}: {code!r} is not in languages {list(self.languages)}")
        return self

    @model_validator(mode="after")
    def _known_resources(self) -> Business:
        for svc in self.services.values():
            unknown = [r for r in svc.resources if r not in self.resources]
            if unknown:
                known = ", ".join(self.resources) or "none (add a resources: section)"
                raise ValueError(f"services.{svc.key}.resources: unknown {', '.join(map(repr, unknown))} "
                                 f"(resources: {known})")
        return self

    @model_validator(mode="after")
    def _unique_names(self) -> Business:
        owner: dict[str, str] = {}
        for svc in self.services.values():
            for name in svc.names:
                if owner.setdefault(name, svc.key) != svc.key:
                    raise ValueError(f"{name!r} names both {owner[name]!r} and {svc.key!r}")
        return self

    def model_post_init(self, context: Any, /) -> None:
        self._tz = ZoneInfo(self.timezone)
        self._by_name = {name: svc for svc in self.services.values() for name in svc.names}
        # Longest names first so "teeth cleaning" wins over "clean"; hyphen or
        # space between words, an optional plural, whole words only.
        alternatives = sorted(self._by_name, key=len, reverse=True)
        parts = [r"[\s-]*".join(map(re.escape, name.split())) for name in alternatives]
        self._finder = re.compile(r"\b(" + "|".join(parts) + r")(?:e?s)?\b", re.IGNORECASE)
        # Compiled once: a booking message is searched for every resource's names.
        self._resource_finders = tuple(
            (key, re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, res.names)) + r")(?!\w)"))
            for key, res in self.resources.items()
        )

    @property
    def tz(self) -> ZoneInfo:
        """The business time zone."""
        return self._tz

    @property
    def language(self) -> str:
        """The language of this view's labels and FAQ (``"en"``; ``"es"`` for the Spanish view)."""
        return self._language

    @property
    def slot_reader(self) -> Callable[[str], str] | None:
        """How slot extraction reads this language's date words (None: as written, English)."""
        return self._slot_reader

    def speaking(self, language: str, slot_reader: Callable[[str], str] | None) -> Business:
        """This business marked as the view for ``language`` (used once, when a view is built)."""
        self._language = language
        self._slot_reader = slot_reader
        return self

    @property
    def resource_keys(self) -> tuple[str, ...]:
        """Every resource, in file order (the implicit :data:`DEFAULT_RESOURCE` without any)."""
        return tuple(self.resources) or (DEFAULT_RESOURCE,)

    def resources_for(self, service: str) -> tuple[str, ...]:
        """The resources that can do ``service`` (a key, label or alias), in order of preference.

        A service listing none, or an unknown one, can use every resource.

        >>> business.resources_for("cleaning")  # doctest: +SKIP
        ('chair-1', 'chair-2')
        """
        found = self.services.get(service) or self.service(service)
        return (found.resources if found is not None and found.resources else None) or self.resource_keys

    def find_resource(self, text: str) -> str | None:
        """The resource (stylist, chair ...) a message names as a whole word, or None: "a trim w/ jess".

        Example::

            business.find_resource("can i get a trim w/ jess sat")   # "jess"
        """
        words = text.casefold()
        return next((key for key, finder in self._resource_finders if finder.search(words)), None)

    @property
    def phone_e164(self) -> str:
        """The phone number without spaces or punctuation: ``+15550100199``."""
        return "+" + re.sub(r"\D", "", self.phone)

    def service(self, name_or_alias: str) -> Service | None:
        """The service called ``name_or_alias`` (key, label or alias), or None.

        Case, hyphens, extra spaces and a plural ``s`` do not matter.

        >>> business.service("Check-ups").key  # doctest: +SKIP
        'checkup'
        """
        name = _normalise_name(name_or_alias)
        found = self._by_name.get(name)
        if found is None and name.endswith("s"):
            found = self._by_name.get(name[:-1]) or self._by_name.get(name[:-2])
        return found

    def find_service(self, text: str) -> Service | None:
        """The first service named anywhere in free ``text``, or None.

        Example::

            business.find_service("can i get a check-up and a cleaning?")
            # -> the checkup service: the first service named wins
        """
        match = self._finder.search(text)
        return None if match is None else self.service(match.group(1))

    def ranges_on(self, day: date) -> tuple[TimeRange, ...]:
        """The opening periods on calendar ``day`` (business-local)."""
        return self.hours.on(WEEKDAYS[day.weekday()])

    def is_open_at(self, when: datetime, duration_minutes: int) -> bool:
        """Whether an appointment starting at ``when`` fits wholly in opening hours.

        ``when`` must be aware; it is converted to the business time zone. The
        appointment must start and end inside one opening period of that day
        (ending exactly at closing time is fine).

        Example::

            ny = business.tz
            business.is_open_at(datetime(2026, 3, 2, 16, 0, tzinfo=ny), 60)   # True
            business.is_open_at(datetime(2026, 3, 2, 16, 30, tzinfo=ny), 60)  # False
        """
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("is_open_at needs an aware datetime")
        if duration_minutes <= 0:
            raise ValueError("duration_minutes must be positive")
        local = when.astimezone(self._tz)
        # Compare wall-clock seconds from local midnight: opening hours are
        # wall-clock times, and an appointment never spans midnight.
        start = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        end = start + duration_minutes * 60
        for period in self.ranges_on(local.date()):
            opens = period.start.hour * 3600 + period.start.minute * 60
            closes = period.end.hour * 3600 + period.end.minute * 60
            if opens <= start and end <= closes:
                return True
        return False

    def opening_hours_text(self) -> tuple[HoursLine, ...]:
        """Opening hours grouped into lines of consecutive days with equal hours.

        Example::

            [(l.days, l.hours) for l in business.opening_hours_text()]
            # [("Mon-Fri", "8am-5pm"), ("Sat", "9am-1pm"), ("Sun", "closed")]
        """
        return self.hours.lines()


def load_business(path: Path) -> Business:
    """Load and validate the business file (``intents/business.yaml``).

    Raises :class:`ConfigError` naming the file and every bad field.

    Example::

        business = load_business(Path("intents/business.yaml"))
        business.name  # "Bright Smile Dental"
    """
    data = read_yaml_mapping(path)
    try:
        return Business.model_validate(data)
    except ValidationError as exc:
        raise validation_problems(path, exc) from None

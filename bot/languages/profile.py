"""Language profiles: everything that differs between languages and is not text, as data.

Reply texts live in ``prompts/replies/<code>/`` and the business's words in
``intents/<code>/``; a profile holds the rest: how dates and times are
written, the voice that speaks it on calls, and how people ask for it
("english please", "en español"). Code asks the profile (:func:`profile_for`)
and never branches on the language.

Example::

    es = profile_for("es")
    es.fmt_when(datetime(2026, 3, 3, 15, 0, tzinfo=tz), tz)   # 'martes 3 de marzo a las 3:00 pm'
    es.voice_language                                        # 'es-US'
    profile_for("en").fmt_date(date(2026, 3, 3))             # 'Tue, Mar 3'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, tzinfo
from functools import cache
from types import MappingProxyType
from typing import Final

from bot.compound import ENGLISH_JOINERS
from bot.sms.normalize import normalize as normalize_sms
from bot.sms.segments import is_gsm7

#: The language of the business's own files (``prompts/replies/*.j2``, ``intents/*.yaml``).
DEFAULT_LANGUAGE: Final = "en"


def fold_accents(text: str) -> str:
    """Lower case without accents, ñ kept: what rules read ("Sí, MAÑANA" -> "si, mañana").

    >>> fold_accents("Sí, envíen MAÑANA")
    'si, envien mañana'
    """
    text = text.lower().replace("ñ", "\0")
    bare = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return bare.replace("\0", "ñ")


@dataclass(frozen=True, slots=True)
class Calendar:
    """How a language writes dates and times: day and month names, the patterns around them, the clock.

    The short names (buttons: "Tue", "mié") are the first three letters of the full ones.

    >>> Calendar.of("Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
    ...             "January February March April May June July August September October November December",
    ...             date="{wd}, {mon} {day}", when="{date} at {time}", short="{wd} {m}/{day} {time}",
    ...             am_pm="AM PM").fmt_date(date(2026, 3, 3))
    'Tue, Mar 3'
    """

    weekdays: tuple[str, ...]  # Monday first, written out
    months: tuple[str, ...]  # January first
    date_pattern: str  # {weekday} {wd} {day} {month} {mon}
    when_pattern: str  # {date} {time}
    short_pattern: str  # {wd} {day} {mon} {m} {time}: a button-sized date and time
    am_pm: tuple[str, str]

    @classmethod
    def of(cls, weekdays: str, months: str, *, date: str, when: str, short: str, am_pm: str) -> Calendar:
        """A calendar from its names written with spaces between (Monday and January first)."""
        am, pm = am_pm.split()
        return cls(tuple(weekdays.split()), tuple(months.split()), date, when, short, (am, pm))

    def fmt_time(self, moment: time) -> str:
        """``3:00 PM`` / ``3:00 pm``."""
        hour = moment.hour % 12 or 12
        return f"{hour}:{moment.minute:02d} {self.am_pm[moment.hour >= 12]}"

    def fmt_date(self, day: date) -> str:
        """``Tue, Mar 3`` / ``martes 3 de marzo``."""
        weekday, month = self.weekdays[day.weekday()], self.months[day.month - 1]
        return self.date_pattern.format(weekday=weekday, wd=weekday[:3], day=day.day, month=month, mon=month[:3])

    def fmt_when(self, moment: datetime, tz: tzinfo) -> str:
        """``Tue, Mar 3 at 3:00 PM`` / ``martes 3 de marzo a las 3:00 pm``, in ``tz``."""
        local = moment.astimezone(tz)
        return self.when_pattern.format(date=self.fmt_date(local.date()), time=self.fmt_time(local.time()))

    def fmt_short(self, moment: datetime, tz: tzinfo) -> str:
        """A button-sized form: ``Tue 3/3 10:30 AM`` / ``jue 5 mar 10:30 am``."""
        local = moment.astimezone(tz)
        return self.short_pattern.format(wd=self.weekdays[local.weekday()][:3], day=local.day, m=local.month,
                                         mon=self.months[local.month - 1][:3], time=self.fmt_time(local.time()))


@dataclass(frozen=True, slots=True)
class LanguageProfile:
    """One language: date words, clock style, voice, and how people ask for it.

    ``asks`` matches a message (lower case, accents folded) that asks for
    this language ("english please", "en español"); ``name`` is how the
    language calls itself; ``calendar`` writes its dates and times.
    """

    code: str
    name: str
    calendar: Calendar
    voice_language: str
    voice_name: str
    asks: re.Pattern[str]
    # Every message that asks for the language holds one of these (lower case): the cheap check first.
    asks_hint: tuple[str, ...]
    # Titles of the bot's own choices (Yes/No buttons) in this language, by payload; none: as written.
    titles: Mapping[str, str] = field(default_factory=dict)
    # Letters GSM-7 lacks, as SMS writes them in this language (á -> a): see :meth:`for_sms`.
    sms_letters: Mapping[str, str] = field(default_factory=dict)
    # Words joining two requests in one message ("hours and can i book"): bot/compound.py.
    joiners: tuple[str, ...] = ()
    # How a question starts (lower case, no accents): a part of a compound message that asks something.
    question_starts: tuple[str, ...] = ()
    # Who a greeting addresses when the name is unknown: "Hi there", "Hola de nuevo" (bot-started messages).
    unnamed: str = "there"

    def is_question(self, text: str) -> bool:
        """Whether ``text`` starts as a question does in this language ("cuál es", "what are").

        >>> profile_for("es").is_question("Cuál es el horario"), profile_for("en").is_question("book a cleaning")
        (True, False)
        """
        return _starts_with(self.question_starts).match(fold_accents(text).strip()) is not None

    def fmt_time(self, moment: time) -> str:
        """``3:00 PM`` / ``3:00 pm``."""
        return self.calendar.fmt_time(moment)

    def fmt_date(self, day: date) -> str:
        """``Tue, Mar 3`` / ``martes 3 de marzo``."""
        return self.calendar.fmt_date(day)

    def fmt_when(self, moment: datetime, tz: tzinfo) -> str:
        """``Tue, Mar 3 at 3:00 PM`` / ``martes 3 de marzo a las 3:00 pm``, in ``tz``."""
        return self.calendar.fmt_when(moment, tz)

    def fmt_short(self, moment: datetime, tz: tzinfo) -> str:
        """A button-sized form: ``Tue 3/3 10:30 AM`` / ``jue 5 mar 10:30 am``."""
        return self.calendar.fmt_short(moment, tz)

    def for_sms(self, text: str) -> str:
        """``text`` without the accents GSM-7 lacks, when that makes the whole text GSM-7.

        One "á" turns an SMS into UCS-2 (70 characters a segment instead of
        160); Spanish texters read "dia" and "mas" without trouble, and é, ñ,
        ü, ¿ and ¡ are GSM-7 and stay. All or nothing, as Smart Encoding:
        a reply with an emoji stays as written.

        >>> profile_for("es").for_sms("¿Qué día? Sí, más tarde")
        '¿Qué dia? Si, mas tarde'
        """
        if not self.sms_letters:
            return text
        folded = normalize_sms(text).translate({ord(k): v for k, v in self.sms_letters.items()})
        return folded if is_gsm7(folded) else text

    def asked_for(self, text: str) -> bool:
        """Whether ``text`` asks to continue in this language.

        >>> profile_for("es").asked_for("en español xfa"), profile_for("en").asked_for("english please")
        (True, True)
        """
        lower = text.lower()
        if not any(hint in lower for hint in self.asks_hint):
            return False
        return self.asks.search(fold_accents(text).strip()) is not None


@cache
def _starts_with(words: tuple[str, ...]) -> re.Pattern[str]:
    longest_first = sorted(words, key=len, reverse=True)
    return re.compile(r"^(?:" + "|".join(re.escape(w) for w in longest_first) + r")\b")


_PLEASE = r"(?:\s*,?\s*(?:please|pls|plz|por ?favor|porfa|xfa|plis|pf|thanks|gracias))?"
_END = r"[\s.!?]*$"

ENGLISH: Final = LanguageProfile(
    code="en",
    name="English",
    calendar=Calendar.of("Monday Tuesday Wednesday Thursday Friday Saturday Sunday",
                         "January February March April May June July August September October November December",
                         date="{wd}, {mon} {day}", when="{date} at {time}", short="{wd} {m}/{day} {time}",
                         am_pm="AM PM"),
    voice_language="en-US",
    voice_name="Polly.Joanna-Neural",
    joiners=ENGLISH_JOINERS,
    question_starts=("what", "whats", "what's", "when", "where", "how", "hows", "do", "does", "are", "r", "is",
                     "can", "could", "will", "which", "who"),
    asks_hint=("engl", "ingl"),
    asks=re.compile(
        r"^(?:(?:in|en)\s+)?(?:english|ingles)" + _PLEASE + _END
        + r"|^(?:can|could)?\s*(?:you|u)?\s*(?:speak|talk|write|text|answer|reply)\s+(?:to me\s+)?(?:in\s+)?english\b"
        + r"|\b(?:en|in) ingles\b|(?<!no )\bhabl\w* (?:en )?ingles\b|\bdo you speak english\b"
    ),
)

SPANISH: Final = LanguageProfile(
    code="es",
    name="Español",
    calendar=Calendar.of("lunes martes miércoles jueves viernes sábado domingo",
                         "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre",
                         date="{weekday} {day} de {month}", when="{date} a las {time}", short="{wd} {day} {mon} {time}",
                         am_pm="am pm"),
    voice_language="es-US",
    # Amazon Polly's US Spanish neural voice, as Twilio names it.
    voice_name="Polly.Lupe-Neural",
    # "cuál es el horario y quiero una cita": "y" joins only parts of two words or more (bot/compound.py).
    joiners=("y", "y también", "y tambien", "también", "tambien", "además", "ademas", "aparte", "otra cosa"),
    question_starts=("cual", "cuales", "que", "q", "a que", "a q", "cuando", "donde", "como", "cuanto", "cuanta",
                     "cuantos", "tienen", "estan", "hay", "abren", "me dice", "me puede decir", "me podria decir"),
    asks_hint=("spani", "espa", "ingl"),
    unnamed="de nuevo",
    titles=MappingProxyType({"yes": "Sí", "no": "No", "cancel_appointment": "Cancelar la cita",
                             "stop_messages": "No más mensajes"}),
    sms_letters=MappingProxyType(dict(zip("áíóúÁÍÓÚ", "aiouAIOU", strict=True))),
    asks=re.compile(
        r"^(?:(?:in|en)\s+)?(?:spanish|espa[nñ]ol|espanish)" + _PLEASE + _END
        + r"|\b(?:en|in) espa[nñ]ol\b|(?<!no )\bhabl\w* (?:en )?espa[nñ]ol\b|\bno habl\w* (?:en )?ingles\b"
        + r"|\b(?:speak|talk|write|text|reply)\w*\s+(?:to me\s+)?"
        r"(?:in\s+)?spanish\b|\bspanish please\b"
    ),
)

PROFILES: Final[Mapping[str, LanguageProfile]] = MappingProxyType({p.code: p for p in (ENGLISH, SPANISH)})


def profile_for(code: str) -> LanguageProfile:
    """The profile of language ``code`` (``"en"``, ``"es"``); KeyError for one we have none for.

    >>> profile_for("es").name
    'Español'
    """
    return PROFILES[code]

"""Spanish date, time and ordinal words, read in the words slot extraction and option picking know.

Slot extraction (:mod:`bot.nlu.slots`) reads English dates and times with
business context (opening hours decide what a bare "3" means). Rather than
a second extractor, a Spanish message's date and time phrases are rewritten
to the English ones it reads, accents optional and SMS spellings included
("mñn" is mañana), before extraction: "el jueves a las 3 de la tarde" ->
"thursday at 3 in the afternoon". Only the date and time words change;
service names stay as written (the Spanish business view knows them).

Example::

    read_spanish_slots("mñn a las 3 de la tarde")      # 'tomorrow at 3 in the afternoon'
    read_spanish_slots("la proxima semana el martes")  # 'next week tuesday'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Final

from bot.languages.profile import fold_accents

_MONTHS = {
    "enero": "january", "febrero": "february", "marzo": "march", "abril": "april", "mayo": "may",
    "junio": "june", "julio": "july", "agosto": "august", "septiembre": "september", "setiembre": "september",
    "octubre": "october", "noviembre": "november", "diciembre": "december",
}
_WEEKDAYS = {
    "lunes": "monday", "martes": "tuesday", "miercoles": "wednesday", "mier": "wednesday", "jueves": "thursday",
    "jue": "thursday", "viernes": "friday", "vie": "friday", "sabado": "saturday", "sab": "saturday",
    "domingo": "sunday", "dom": "sunday",
}
_COUNTS = {"un": "a", "una": "a", "dos": "two", "tres": "three", "cuatro": "four", "cinco": "five",
           "seis": "six", "siete": "seven"}
_UNITS = {"dia": "day", "dias": "days", "semana": "week", "semanas": "weeks"}
_TOMORROW = r"(?:mañana|manana|mñn|mnn|mñna|maniana|mañna)"
_MONTH = "|".join(_MONTHS)
_WEEKDAY = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_COUNT = "|".join([*_COUNTS, r"\d{1,2}"])


def _weekday(match: re.Match[str]) -> str:
    return _WEEKDAYS[match.group("wd")]


# In order: longer phrases first ("pasado mañana" before "mañana", "de la mañana" before "mañana").
_REWRITES: Final[tuple[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]], ...]] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (rf"\bpasado {_TOMORROW}", "day after tomorrow"),
        (rf"\b(?:en|por|de|x) la {_TOMORROW}|\btemprano\b", "in the morning"),
        (r"\besta (?:mañana|manana)\b", "this morning"),
        (r"\besta tarde\b", "today in the afternoon"),
        (r"\besta noche\b", "tonight"),
        (r"\b(?:en|por|de|x) la tarde\b|\btarde(?:cita)?\b(?! que)", "in the afternoon"),
        (r"\b(?:en|por|de|x) la noche\b", "in the evening"),
        (r"\bal mediodia\b|\bmediodia\b", "noon"),
        (r"\bmedianoche\b", "midnight"),
        (rf"\b{_TOMORROW}(?!\w)", "tomorrow"),
        (r"\bhoy\b", "today"),
        (r"\bayer\b", "yesterday"),
        (r"\b(?:la )?(?:proxima semana|semana que viene|semana proxima|otra semana)\b", "next week"),
        (rf"\ben (?P<n>{_COUNT}) (?P<unit>dias?|semanas?)\b",
         lambda m: f"in {_COUNTS.get(m.group('n'), m.group('n'))} {_UNITS[m.group('unit')]}"),
        (rf"\b(?P<d>\d{{1,2}}) de (?P<m>{_MONTH})\b", lambda m: f"{m.group('d')} {_MONTHS[m.group('m')]}"),
        (rf"\b(?P<m>{_MONTH})\b", lambda m: _MONTHS[m.group("m")]),
        (rf"\b(?:el |este |esta )?(?:proximo |próximo )?(?P<wd>{_WEEKDAY})(?: que viene)?\b", _weekday),
        (r"\bel (?P<d>\d{1,2})\b(?!\s*(?:de|:|y|a\.?m|p\.?m|am|pm))", lambda m: f"the {m.group('d')}th"),
        (r"\b(?P<h>\d{1,2}) y media\b", lambda m: f"{m.group('h')}:30"),
        (r"\b(?P<h>\d{1,2}) y cuarto\b", lambda m: f"{m.group('h')}:15"),
        (r"\b(?:a eso de|como a|tipo a|tipo|como)(?: las?)? ?(?=\d)", "around "),
        (r"\ba las?\b|\bpara las?\b", "at"),
        # Which of the offered options ("la primera", "el ultimo"): bot/flows/options.py reads English ordinals.
        (r"\b(?:la |el )?(?:primera|primero|1ra|1ro|1era|1ero)\b", "the first"),
        (r"\b(?:la |el )?(?:segunda|segundo|2da|2do)\b", "the second"),
        (r"\b(?:la |el )?(?:tercera|tercero|3ra|3ro|3era|3ero)\b", "the third"),
        (r"\b(?:la |el )?(?:ultima|ultimo)\b", "the last"),
        (r"\b(?:el )?mismo dia\b", "same day"),
        (r"\b(?:la )?misma hora\b", "same time"),
        (r"\buna hora (?:mas tarde|despues)\b", "an hour later"),
        (r"\buna hora antes\b", "an hour earlier"),
        (r"\bmedia hora (?:mas tarde|despues)\b", "half an hour later"),
    )
)


def read_spanish_slots(text: str) -> str:
    """``text`` with its Spanish date and time words written the English way (see the module)."""
    out = fold_accents(text)
    for pattern, replacement in _REWRITES:
        out = pattern.sub(replacement, out)
    return out


#: Per language: how its date words are read for slot extraction (English needs nothing).
SLOT_READERS: Final[Mapping[str, Callable[[str], str]]] = MappingProxyType({"es": read_spanish_slots})
